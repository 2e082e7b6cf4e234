import BodyRegex
import Testing

/// HTTP_GET's regex as keepalived matches it: PCRE2 over the body as it streams in.
@Suite struct BodyRegexTests {
    static func matches(_ pattern: String, _ chunks: [String], options: [String] = [], min: Int = 0, max: Int? = nil) throws -> Bool {
        let bits = options.reduce(UInt32(0)) { $0 | (RegexOptions.bits[$1] ?? 0) }
        let matcher = StreamingRegexMatch(try CompiledRegex(pattern: pattern, options: bits), minimumOffset: min, maximumOffset: max)
        for chunk in chunks { Array(chunk.utf8).withUnsafeBytes { matcher.update($0) } }
        return matcher.finish()
    }

    @Test func aMatchMaySpanReads() throws {
        #expect(try Self.matches("status: (ok|fine)", ["<p>sta", "tus: o", "k</p>"]))
        #expect(try Self.matches("a.{3}z", ["xxa", "b", "cdz"]))
        #expect(try !Self.matches("status: ok", ["status: ", "down"]))
        #expect(try Self.matches("(?<=id=)42", ["id", "=", "42"]), "lookbehind context kept across reads")
    }

    @Test func optionsAreKeepalivedsWords() throws {
        #expect(try !Self.matches("HEALTHY", ["healthy"]))
        #expect(try Self.matches("HEALTHY", ["healthy"], options: ["caseless"]))
        #expect(try Self.matches("^ok$", ["line\nok\nmore"], options: ["multiline"]))
        #expect(try !Self.matches("^ok$", ["line\nok\nmore"]))
        #expect(RegexOptions.bits.count == 24, "keepalived 2.2.7's list")
    }

    @Test func aPatternThatEndsThePageMatchesWhenTheBodyEnds() throws {
        // PCRE2's hard partial matching cannot decide `$` until the end; keepalived never re-runs
        // it there, Vigil does.
        #expect(try Self.matches("</html>\\s*$", ["<html>ok", "</html>\n"]))
        #expect(try Self.matches("ok$", ["o", "k"]))
    }

    @Test func offsetsBoundWhereAMatchMayStart() throws {
        let body = ["0123456789", "MARK", "abcdef"]   // MARK starts at 10
        #expect(try Self.matches("MARK", body, min: 5))
        #expect(try Self.matches("MARK", body, min: 10, max: 10))
        #expect(try !Self.matches("MARK", body, min: 11), "starts before the minimum")
        #expect(try !Self.matches("MARK", body, max: 9), "starts after the maximum")
    }

    @Test func anInvalidPatternSaysWhere() {
        #expect(throws: RegexError.self) { try CompiledRegex(pattern: "ok(", options: 0) }
        do { _ = try CompiledRegex(pattern: "a[z", options: 0) } catch {
            #expect(error.offset == 3 && error.message.contains("missing terminating ]"), "\(error)")
        }
    }

    @Test func aLongPartialMatchIsGivenUpNotGrown() throws {
        // "<" followed by 100 KiB with no ">": the kept bytes stay bounded and the match fails.
        let chunk = String(repeating: "x", count: 16 * 1024)
        #expect(try !Self.matches("<[^>]*>", ["<"] + Array(repeating: chunk, count: 7)))
    }
}
