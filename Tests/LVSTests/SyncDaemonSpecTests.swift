import Addressing
import IPVS
import Testing
import VigilConfig
@testable import LVS

@Suite struct SyncDaemonSpecTests {
    func spec(_ globals: String) -> SyncDaemonSpec? {
        let text = "global_defs {\n\(globals)\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n"
        let (config, _) = ConfigLoader.load(path: "k.conf", configID: nil, fileSystem: InMemoryFileSystem(["k.conf": text]), host: nil)
        return SyncDaemonSpec.build(config)
    }

    @Test func withoutAnInstanceMasterAndBackupRunTogetherWithSyncID0() throws {
        let s = try #require(spec("lvs_sync_daemon eth1"))
        #expect(s.wanted(instanceIsMaster: false).map(\.state) == [.master, .backup])
        #expect(s.syncID == 0)
    }

    @Test func withAnInstanceTheStateFollowsAndTheSyncIDIsTheVRID() throws {
        let s = try #require(spec("lvs_sync_daemon eth1 inst VI_1"))
        #expect(s.syncID == 51)
        #expect(s.wanted(instanceIsMaster: true).map(\.state) == [.master])
        #expect(s.wanted(instanceIsMaster: false).map(\.state) == [.backup])
        // Becoming master: the backup stops first, then the master starts.
        let (stop, start) = SyncDaemonSpec.changes(running: s.wanted(instanceIsMaster: false), wanted: s.wanted(instanceIsMaster: true))
        #expect(stop.map(\.state) == [.backup])
        #expect(start.map(\.state) == [.master])
    }

    @Test func aThreadTheKernelFilledInWithDefaultsIsTheSameThread() throws {
        let s = try #require(spec("lvs_sync_daemon eth1 id 9"))
        let asReported = s.wanted(instanceIsMaster: false).map { thread in
            var t = thread
            t.port = 8848; t.ttl = 1; t.maxLength = 1472; t.group = IPAddress("224.0.0.81")
            return t
        }
        let unchanged = SyncDaemonSpec.changes(running: asReported, wanted: s.wanted(instanceIsMaster: false))
        #expect(unchanged.stop.isEmpty && unchanged.start.isEmpty)
        let moved = try #require(spec("lvs_sync_daemon eth1 id 9 port 9000"))
        let changed = SyncDaemonSpec.changes(running: asReported, wanted: moved.wanted(instanceIsMaster: false))
        #expect(changed.stop.count == 2 && changed.start.count == 2)
    }
}
