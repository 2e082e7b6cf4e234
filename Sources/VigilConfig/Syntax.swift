/// One statement of the configuration: a keyword, its arguments, and a block if it opens one.
/// The typed model is built from these; keeping this untyped layer separate lets the block
/// structure be checked once, for every keyword, before any meaning is given to it.
public struct Statement: Sendable {
    public var words: [Token]
    /// The statements inside `{ … }`, or nil when the statement opens no block.
    public var block: [Statement]?
    /// Where the block was closed (for messages about what is missing in it).
    public var blockEnd: SourceLocation?

    public var keyword: String { words.first?.text ?? "" }
    public var location: SourceLocation { words.first?.location ?? .unknown("") }
    public var arguments: ArraySlice<Token> { words.dropFirst() }

    public init(words: [Token], block: [Statement]? = nil) {
        self.words = words
        self.block = block
    }
}

/// Builds the statement tree from logical lines. A statement ends at the end of its line, at a
/// `{` (which opens its block) or at a `}`. A `{` alone at the start of a line opens the block
/// of the statement on the previous line, which keepalived also accepts. Brace mismatches are
/// reported with the place the block was opened, and parsing continues.
///
/// Incremental: `feed` hands back top-level statements as soon as they are complete, so the
/// interpreter can consume a big configuration block by block instead of holding every token
/// of it in memory at once.
public struct SyntaxParser {
    public static let maxNesting = 32

    // Open blocks, innermost last: their statements so far and where they were opened.
    // Level 0 is the top level.
    private var levels: [[Statement]] = [[]]
    private var openers: [SourceLocation] = []
    private var skippedDepth = 0
    private var nestingReported = false
    private var lastLine: SourceLocation?

    public init() {}

    /// Adds one line; returns the top-level statements that can no longer change. The newest
    /// top-level statement is held back, since a `{` on the next line may still open its block.
    public mutating func feed(_ line: LogicalLine, diagnostics: inout DiagnosticSink) -> [Statement] {
        lastLine = SourceLocation(fileID: line.fileID, line: line.line, column: 1)
        var tokens = line.bytes.withUnsafeBufferPointer {
            Lexer.tokenize(bytes: $0, fileID: line.fileID, line: line.line, diagnostics: &diagnostics)
        }
        guard !tokens.isEmpty else { return [] }
        // The common `keyword args {` line: drop the brace in place instead of copying the words.
        var trailingOpen: Token?
        if tokens.count > 1, tokens[tokens.count - 1].kind == .open, !tokens.dropLast().contains(where: { $0.kind == .open || $0.kind == .close }) {
            trailingOpen = tokens.removeLast()
            levels[levels.count - 1].append(Statement(words: tokens))
            open(trailingOpen!, hadWords: true, diagnostics: &diagnostics)
        } else {
            var start = 0
            for (index, token) in tokens.enumerated() where token.kind == .open || token.kind == .close {
                let pending = start < index
                if pending { levels[levels.count - 1].append(Statement(words: Array(tokens[start..<index]))) }
                start = index + 1
                if token.kind == .open {
                    open(token, hadWords: pending, diagnostics: &diagnostics)
                } else if skippedDepth > 0 {
                    skippedDepth -= 1
                } else if levels.count == 1 {
                    diagnostics.error(token.location, "unexpected '}': no block is open here")
                } else {
                    openers.removeLast()
                    closeBlock(at: token.location)
                }
            }
            if start < tokens.count {
                levels[levels.count - 1].append(Statement(words: start == 0 ? tokens : Array(tokens[start...])))
            }
        }
        guard levels.count == 1, levels[0].count > 1 else { return [] }
        let done = Array(levels[0].dropLast())
        levels[0].removeFirst(levels[0].count - 1)
        return done
    }

    /// Closes what is still open (reporting each missing `}`) and returns the remaining statements.
    public mutating func finish(diagnostics: inout DiagnosticSink) -> [Statement] {
        while levels.count > 1 {
            let opener = openers.removeLast()
            let ownerKeyword = levels[levels.count - 2].last?.keyword ?? "block"
            diagnostics.error(opener, "missing '}': the '\(ownerKeyword)' block opened here is never closed")
            closeBlock(at: lastLine ?? opener)
        }
        defer { levels = [[]] }
        return levels[0]
    }

    private mutating func open(_ token: Token, hadWords: Bool, diagnostics: inout DiagnosticSink) {
        if !hadWords {
            // `{` on its own: it belongs to the previous statement, if that has no block yet.
            guard let last = levels[levels.count - 1].last, last.block == nil, !last.words.isEmpty else {
                diagnostics.error(token.location, "unexpected '{': no keyword before it opens a block")
                skippedDepth += 1
                return
            }
        }
        if levels.count > Self.maxNesting {
            if !nestingReported {
                diagnostics.error(token.location, "blocks nested more than \(Self.maxNesting) deep: the inner ones are ignored")
                nestingReported = true
            }
            skippedDepth += 1
            return
        }
        levels.append([])
        openers.append(token.location)
    }

    private mutating func closeBlock(at location: SourceLocation) {
        let finished = levels.removeLast()
        let last = levels.count - 1
        levels[last][levels[last].count - 1].block = finished
        levels[last][levels[last].count - 1].blockEnd = location
    }
}
