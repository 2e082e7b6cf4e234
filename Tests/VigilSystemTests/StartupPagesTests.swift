import Glibc
import Testing
import VigilSystem

/// Which mappings may let go of their resident pages: only read-only ones backed by a file
/// whose pages are all still the file's (never RELRO, data, the heap or the vDSO).
@Suite struct StartupPagesTests {
    static let smaps = """
    00400000-01279000 r-xp 00000000 fe:00 5325902                            /usr/sbin/vigild
    Size:              14820 kB
    Rss:                7360 kB
    Anonymous:             0 kB
    01279000-0131e000 r--p 00e78000 fe:00 5325902                            /usr/sbin/vigild
    Size:                660 kB
    Rss:                 504 kB
    Anonymous:             0 kB
    0131e000-0158b000 rw-p 00f1d000 fe:00 5325902                            /usr/sbin/vigild
    Rss:                1164 kB
    Anonymous:           300 kB
    7f0000000000-7f0000010000 r--p 00000000 fe:00 42                         /usr/lib/x86_64-linux-gnu/libcrypto.so.3
    Rss:                  64 kB
    Anonymous:             0 kB
    7f0000200000-7f0000240000 r--p 00400000 fe:00 42                         /usr/lib/x86_64-linux-gnu/libcrypto.so.3
    Rss:                 256 kB
    Anonymous:           248 kB
    7f0000300000-7f0000340000 r-xp 00000000 fe:00 43                         /usr/lib/x86_64-linux-gnu/libnl-3.so.200
    Rss:                   0 kB
    Anonymous:             0 kB
    7f0000400000-7f0000500000 rw-p 00000000 00:00 0
    Rss:                 128 kB
    Anonymous:           128 kB
    7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
    Rss:                   8 kB
    Anonymous:             0 kB
    """

    @Test func onlyReadOnlyFilePagesThatAreStillTheFilesAreDroppable() {
        let found = StartupPages.droppable(smaps: Self.smaps)
        #expect(found == [
            StartupPages.Mapping(start: 0x400000, end: 0x1279000, residentKB: 7360),
            StartupPages.Mapping(start: 0x1279000, end: 0x131e000, residentKB: 504),
            StartupPages.Mapping(start: 0x7f0000000000, end: 0x7f0000010000, residentKB: 64),
        ], "not the data, the relocated RELRO (anonymous pages), an empty mapping, the heap or the vDSO")
    }

    @Test func malformedLinesAreSkipped() {
        #expect(StartupPages.droppable(smaps: "garbage\n-\nzz-yy r-xp 0 0 0 /x\nRss: many kB\n").isEmpty)
    }

    /// On this test process: its code pages go and come back as they run.
    @Test func releasingThisProcesssCodePagesKeepsItRunning() {
        let released = StartupPages.release()
        #expect(released > 0)
        #expect(StartupPages.droppable(smaps: Self.smaps).count == 3, "code runs again after its pages went")
    }
}
