// libFuzzer target: every other reply a check or tracker reads from outside: SMTP servers (the
// SMTP_CHECK conversation and the alert mail session), DNS_CHECK and UDP_CHECK answers,
// PING_CHECK echoes, and the number in a track file.
import HealthCheck
import SMTP
import VRRPSpecs

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReplies(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var dialogue = SMTPCheckDialogue()
    _ = bytes.withUnsafeBytes { dialogue.received($0) }
    var session = SMTPSession(message: SMTPMessage(helo: "lvs01", from: "a@example.com", to: ["b@example.com", "c@example.com"],
                                                   subject: "s", body: "b", date: "Tue, 01 Dec 2026 12:00:00 +0000"))
    // Replies one line at a time, as a server answers each command.
    for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) where !session.isDone {
        _ = session.received(Array(line) + [UInt8(ascii: "\n")])
    }
    _ = DNSQuery.judge(bytes[...], id: 0x4242)
    _ = ICMPEcho.judge(bytes[...], ipv6: false, id: 7, sequence: 1)
    _ = ICMPEcho.judge(bytes[...], ipv6: true, id: 7, sequence: 1)
    _ = UDPCheckSpec(payload: [1], requireReply: true, replyData: [0x41, 0x42], replyMask: [0xFF, 0x0F], minReplyLength: 1, maxReplyLength: 64).judge(bytes[...])
    _ = trackFileValue(bytes)
    return 0
}
