// libFuzzer target: an HTTP_GET answer as the prober reads it. The first byte picks the read
// size, so one input is also fed in pieces; both ways must end in the same state.
import HealthCheck

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    // Small pieces (1...8 bytes: a CR and its LF apart, a header split anywhere) or large ones
    // (64 bytes and up), so a long answer is not read a byte at a time on every input.
    let piece = data[0] < 8 ? Int(data[0]) + 1 : Int(data[0]) * 64
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    var whole = HTTPResponseReader()
    var wholeBody = 0
    let wholeResult = Result { () throws(HTTPResponseReader.Failure) in try whole.consume(bytes[...]) { wholeBody += $0.count } }
    var pieces = HTTPResponseReader()
    var piecesBody = 0
    var piecesFailed = false
    var start = 0
    while start < bytes.count, !piecesFailed {
        let end = min(bytes.count, start + piece)
        do { try pieces.consume(bytes[start..<end]) { piecesBody += $0.count } } catch { piecesFailed = true }
        start = end
    }
    if case .success = wholeResult, !piecesFailed {
        guard whole.statusCode == pieces.statusCode, wholeBody == piecesBody, whole.headerComplete == pieces.headerComplete else {
            fatalError("the same answer read whole and in pieces of \(piece) differs")
        }
    }
    _ = HTTPExpectation(statusCodes: [200...299], digest: nil).failure(of: whole, bodyDigest: nil)
    return 0
}
