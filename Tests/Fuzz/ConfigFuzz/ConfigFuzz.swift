// libFuzzer target: keepalived.conf text through the whole configuration language (preprocessor,
// lexer, parser, interpreter, validation) with no host behind it, as `vigil -t` reads a file.
import VigilConfig

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let (config, diagnostics) = ConfigLoader.load(text: text)
    _ = ConfigDumper.dump(config)
    _ = diagnostics.all.map(\.description)
    return 0
}
