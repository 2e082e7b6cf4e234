// libFuzzer target: what a client may send the control socket and the metrics listener, and
// what `vigil status` reads back from the daemon.
import VigilMetrics
import VigilStatus

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzControl(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = ControlProtocol.parse(bytes)
    _ = ControlProtocol.parseAnswer(bytes)
    _ = MetricsHTTP.parse(bytes)
    _ = MetricsListenAddress.parse(String(decoding: bytes, as: UTF8.self))
    return 0
}
