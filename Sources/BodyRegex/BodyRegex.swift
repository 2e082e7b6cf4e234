// HTTP_GET/SSL_GET's `regex`, through the PCRE2 that keepalived 2.2.7 uses, so a pattern and
// its `regex_options` mean the same to both. Computation only: no I/O.
import CPCRE2

/// keepalived's `regex_options` words (check_http.c) and the PCRE2 compile bits they set.
public enum RegexOptions {
    public static let bits: [String: UInt32] = [
        "allow_empty_class": UInt32(PCRE2_ALLOW_EMPTY_CLASS), "alt_bsux": UInt32(PCRE2_ALT_BSUX),
        "auto_callout": UInt32(PCRE2_AUTO_CALLOUT), "caseless": UInt32(PCRE2_CASELESS),
        "dollar_endonly": UInt32(PCRE2_DOLLAR_ENDONLY), "dotall": UInt32(PCRE2_DOTALL),
        "dupnames": UInt32(PCRE2_DUPNAMES), "extended": UInt32(PCRE2_EXTENDED),
        "firstline": UInt32(PCRE2_FIRSTLINE), "match_unset_backref": UInt32(PCRE2_MATCH_UNSET_BACKREF),
        "multiline": UInt32(PCRE2_MULTILINE), "never_ucp": UInt32(PCRE2_NEVER_UCP),
        "never_utf": UInt32(PCRE2_NEVER_UTF), "no_auto_capture": UInt32(PCRE2_NO_AUTO_CAPTURE),
        "no_auto_possess": UInt32(PCRE2_NO_AUTO_POSSESS), "no_dotstar_anchor": UInt32(PCRE2_NO_DOTSTAR_ANCHOR),
        "no_start_optimize": UInt32(PCRE2_NO_START_OPTIMIZE), "ucp": UInt32(PCRE2_UCP),
        "ungreedy": UInt32(PCRE2_UNGREEDY), "utf": UInt32(PCRE2_UTF),
        "never_backslash_c": UInt32(PCRE2_NEVER_BACKSLASH_C), "alt_circumflex": UInt32(PCRE2_ALT_CIRCUMFLEX),
        "alt_verbnames": UInt32(PCRE2_ALT_VERBNAMES), "use_offset_limit": UInt32(PCRE2_USE_OFFSET_LIMIT),
    ]
}

public struct RegexError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// Where in the pattern PCRE2 stopped.
    public var offset: Int
    public var description: String { "\(message) at offset \(offset)" }
}

/// A compiled pattern; shared by every URL that names the same pattern and options, as
/// keepalived shares its `regex_t`.
public final class CompiledRegex: @unchecked Sendable {
    let code: OpaquePointer
    /// One match-data block per pattern: the loop is single-threaded and a match's result is
    /// read before the next match starts, so the fetches in flight can share it.
    let matchData: OpaquePointer
    /// PCRE2's longest lookbehind: bytes kept before a partial match across reads.
    let maxLookbehind: Int

    public init(pattern: String, options: UInt32) throws(RegexError) {
        var errorCode: Int32 = 0
        var errorOffset = 0
        let bytes = Array(pattern.utf8)
        let compiled = bytes.withUnsafeBufferPointer { buffer in
            pcre2_compile_8(buffer.baseAddress, buffer.count, options, &errorCode, &errorOffset, nil)
        }
        guard let compiled else {
            var message = [UInt8](repeating: 0, count: 256)
            let length = pcre2_get_error_message_8(errorCode, &message, message.count)
            throw RegexError(message: String(decoding: message.prefix(max(0, Int(length))), as: UTF8.self), offset: errorOffset)
        }
        guard let data = pcre2_match_data_create_from_pattern_8(compiled, nil) else {
            pcre2_code_free_8(compiled)
            throw RegexError(message: "no memory for the match data", offset: 0)
        }
        code = compiled
        matchData = data
        var lookbehind: UInt32 = 0
        _ = pcre2_pattern_info_8(compiled, vigil_pcre2_info_maxlookbehind(), &lookbehind)
        maxLookbehind = Int(lookbehind)
    }

    deinit {
        pcre2_match_data_free_8(matchData)
        pcre2_code_free_8(code)
    }

    enum Outcome { case matched(at: Int), partial(at: Int), noMatch }

    func match(_ subject: UnsafeBufferPointer<UInt8>, from start: Int, partial: Bool) -> Outcome {
        let rc = pcre2_match_8(code, subject.baseAddress, subject.count, start, partial ? vigil_pcre2_partial_hard() : 0, matchData, nil)
        let first = pcre2_get_ovector_pointer_8(matchData)[0]
        if rc == vigil_pcre2_error_partial() { return .partial(at: first) }
        // rc 0 means more captures than the match data holds: still a match.
        return rc >= 0 ? .matched(at: first) : .noMatch
    }
}

/// keepalived's check_regex: the body is matched as it arrives, read by read, with PCRE2's
/// hard partial matching, so a match may span reads while at most `keepLimit` bytes are kept;
/// `regex_min_offset` / `regex_max_offset` bound where a match may start.
///
/// Two differences on purpose. When the body ends, what is still kept for a partial match is
/// matched once more as complete, so a pattern that ends the page (`</html>\s*$`, `ok$`)
/// matches; keepalived stops at the partial result, and such a pattern never matches there.
/// And a read that does not match keeps its last bytes as the lookbehind's context for the
/// next, where keepalived drops them.
public final class StreamingRegexMatch {
    let regex: CompiledRegex
    /// The first byte of the body where a match may start.
    let minimumOffset: Int
    /// One beyond the last byte where a match may start (nil: anywhere), as keepalived keeps it.
    let endOffset: Int?
    public static let keepLimit = 64 * 1024

    private var kept: [UInt8] = []
    /// The body offset of `kept[0]`.
    private var subjectOffset = 0
    /// Where the next match starts in `kept`: after the lookbehind context of a partial one.
    private var startOffset = 0
    public private(set) var matched = false

    /// `maximumOffset`: regex_max_offset, the last byte at which a match may start.
    public init(_ regex: CompiledRegex, minimumOffset: Int = 0, maximumOffset: Int? = nil) {
        self.regex = regex
        self.minimumOffset = max(0, minimumOffset)
        endOffset = maximumOffset.map { $0 + 1 }
    }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard !matched, !bytes.isEmpty else { return }
        kept.append(contentsOf: bytes)
        step(final: false)
    }

    /// The body is complete: whether the pattern matched.
    public func finish() -> Bool {
        if !matched && !kept.isEmpty { step(final: true) }
        return matched
    }

    private func step(final: Bool) {
        var start = 0
        if minimumOffset > 0 {
            if subjectOffset + kept.count < minimumOffset - min(minimumOffset, regex.maxLookbehind) {
                discardKept()
                return
            }
            if subjectOffset < minimumOffset { start = minimumOffset - subjectOffset }
        }
        if let endOffset, subjectOffset + startOffset >= endOffset {
            discardKept()
            return
        }
        start = max(start, startOffset)
        startOffset = 0
        guard start <= kept.count else {
            discardKept()
            return
        }
        let outcome = kept.withUnsafeBufferPointer { regex.match($0, from: start, partial: !final) }
        switch outcome {
        case .partial(let at):
            let keep = max(0, at - regex.maxLookbehind)
            if keep > 0 {
                startOffset = regex.maxLookbehind
                kept.removeFirst(keep)
                subjectOffset += keep
            } else if kept.count >= Self.keepLimit {
                // A partial match longer than the limit: give it up rather than grow.
                discardKept()
            }
        case .matched(let at):
            if endOffset.map({ subjectOffset + at < $0 }) ?? true { matched = true }
            discardKept()
        case .noMatch:
            // Keep the lookbehind's context, so `(?<=id=)42` matches when "id=" and "42"
            // arrive in different reads (keepalived drops it, and misses such a match).
            let context = min(regex.maxLookbehind, kept.count)
            subjectOffset += kept.count - context
            kept.removeFirst(kept.count - context)
            startOffset = context
        }
    }

    private func discardKept() {
        subjectOffset += kept.count
        kept.removeAll(keepingCapacity: true)
    }
}
