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
public enum SyntaxParser {
    public static let maxNesting = 32

    public static func parse(_ lines: [LogicalLine], diagnostics: inout DiagnosticSink) -> [Statement] {
        // A stack of open blocks; index 0 is the top level.
        var stack: [(statements: [Statement], opener: SourceLocation?)] = [([], nil)]
        var skippedDepth = 0
        var nestingReported = false

        func closeBlock(at location: SourceLocation) {
            let finished = stack.removeLast()
            var owner = stack[stack.count - 1].statements.removeLast()
            owner.block = finished.statements
            owner.blockEnd = location
            stack[stack.count - 1].statements.append(owner)
        }

        for line in lines {
            let tokens = Lexer.tokenize(line.text, file: line.file, line: line.line, diagnostics: &diagnostics)
            var pending: [Token] = []
            func flush() {
                if !pending.isEmpty {
                    stack[stack.count - 1].statements.append(Statement(words: pending))
                    pending = []
                }
            }
            for token in tokens {
                switch token.kind {
                case .word, .quoted:
                    pending.append(token)
                case .open:
                    if pending.isEmpty {
                        // `{` on its own: it belongs to the previous statement, if that has no block yet.
                        guard let last = stack[stack.count - 1].statements.last, last.block == nil,
                              !last.words.isEmpty else {
                            diagnostics.error(token.location, "unexpected '{': no keyword before it opens a block")
                            skippedDepth += 1
                            continue
                        }
                    } else {
                        flush()
                    }
                    if stack.count > maxNesting {
                        if !nestingReported {
                            diagnostics.error(token.location, "blocks nested more than \(maxNesting) deep: the inner ones are ignored")
                            nestingReported = true
                        }
                        skippedDepth += 1
                        continue
                    }
                    stack.append(([], token.location))
                case .close:
                    flush()
                    if skippedDepth > 0 {
                        skippedDepth -= 1
                    } else if stack.count == 1 {
                        diagnostics.error(token.location, "unexpected '}': no block is open here")
                    } else {
                        closeBlock(at: token.location)
                    }
                }
            }
            flush()
        }
        while stack.count > 1 {
            let opener = stack[stack.count - 1].opener!
            let ownerKeyword = stack[stack.count - 2].statements.last?.keyword ?? "block"
            diagnostics.error(opener, "missing '}': the '\(ownerKeyword)' block opened here is never closed")
            let end = lines.last.map { SourceLocation(file: $0.file, line: $0.line, column: 1) } ?? opener
            closeBlock(at: end)
        }
        return stack[0].statements
    }
}
