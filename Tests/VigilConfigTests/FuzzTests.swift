import Testing
import VigilTestSupport
@testable import VigilConfig


@Suite struct FuzzTests {
    static let seeds = [InstanceTests.lvs01, VirtualServerTests.dr, HostCheckTests.config(security: true, script: "/bin/true")]
    static let fragments: [[UInt8]] = ["{", "}", "\"", "'", "$X", "${", "@a ", "!", "#", "\n", "include x\n", "\\", "255", "-1",
                                       "999999999999999999999", "::", "/", "0.0.0.0/99", "\u{0}", "\u{FF}"].map { Array($0.utf8) }

    /// Random byte-level mutations of valid configs: the loader must always return, never trap.
    @Test(arguments: 0..<4)
    func mutationsNeverCrash(round: Int) {
        var rng = SeededRandom(seed: UInt64(round) &* 7919 &+ 17)
        for iteration in 0..<500 {
            var bytes = Array(Self.seeds[iteration % Self.seeds.count].utf8)
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                let position = Int.random(in: 0...bytes.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0 where position < bytes.count: bytes.remove(at: position)
                case 1: bytes.insert(contentsOf: Self.fragments.randomElement(using: &rng)!, at: position)
                case 2 where position < bytes.count: bytes[position] = UInt8.random(in: 0...255, using: &rng)
                default:
                    let end = min(bytes.count, position + Int.random(in: 0...40, using: &rng))
                    bytes.insert(contentsOf: bytes[position..<end], at: position)
                }
            }
            let fs = InMemoryFileSystem(bytes: ["k.conf": bytes])
            let (_, sink) = ConfigLoader.load(path: "k.conf", configID: "a", fileSystem: fs, host: FakeHost())
            #expect(sink.exitStatus >= 0)
        }
    }

    @Test func pureGarbageAndHugeInputs() {
        var rng = SeededRandom(seed: 42)
        let garbage = (0..<200_000).map { _ in UInt8.random(in: 1...255, using: &rng) }
        let (_, sink) = ConfigLoader.load(path: "g", configID: nil, fileSystem: InMemoryFileSystem(bytes: ["g": garbage]), host: nil)
        #expect(sink.hasProblems)
        let longLine = String(repeating: "x", count: 1_000_000)
        let (_, sink2) = ConfigLoader.load(text: longLine)
        #expect(sink2.all.count == 1)
    }
}
