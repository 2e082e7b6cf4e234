@preconcurrency import Glibc
import Testing
import VigilSystem

/// A fresh directory under /tmp for one test, removed afterwards.
private func scratch(_ tag: String) -> String {
    let path = "/tmp/vigil-system-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    mkdir(path, 0o755)
    return path
}

private func remove(_ directory: String) {
    if let dir = opendir(directory) {
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { unlink(directory + "/" + name); rmdir(directory + "/" + name) }
        }
        closedir(dir)
    }
    rmdir(directory)
}

private func mode(_ path: String) -> mode_t? {
    var status = stat()
    return lstat(path, &status) == 0 ? status.st_mode & 0o7777 : nil
}

private func contents(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while case let n = fread(&buffer, 1, buffer.count, file), n > 0 { bytes += buffer.prefix(n) }
    return String(decoding: bytes, as: UTF8.self)
}

@Suite struct ControlSocketFileTests {
    @Test func isRootOnlyInADirectoryItCreates() throws {
        let directory = scratch("sock")
        defer { remove(directory) }
        let path = directory + "/run/vigil.sock"
        let listener = try StreamListenerSocket.unix(path: path)
        #expect(mode(path) == 0o600)
        #expect(mode(directory + "/run") == 0o755)
        listener.close()
        #expect(mode(path) == nil, "closing removes the socket file")
    }

    /// An answer to a client whose request was never read (refused at once: too many clients,
    /// too large) arrives whole and ends in an orderly end of file, not a connection reset.
    @Test func closingOverUnreadInputStillDeliversTheAnswer() throws {
        let directory = scratch("drain")
        defer { remove(directory) }
        let path = directory + "/vigil.sock"
        let listener = try StreamListenerSocket.unix(path: path)
        defer { listener.close() }
        let client = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(connected == 0)
        let request = [UInt8](repeating: 0x41, count: 8192)
        #expect(request.withUnsafeBytes { send(client, $0.baseAddress, $0.count, 0) } == 8192)
        let served = try #require(listener.accept())
        #expect(served.write(Array("too many clients\n".utf8)[...]) == 17)
        served.close()
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
        #expect(String(decoding: buffer.prefix(max(n, 0)), as: UTF8.self) == "too many clients\n")
        let end = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
        #expect(end == 0, "end of file, not errno \(errno) (ECONNRESET is \(ECONNRESET))")
    }

    @Test func aStaleSocketIsReplacedALiveOneIsNot() throws {
        let directory = scratch("stale")
        defer { remove(directory) }
        let path = directory + "/vigil.sock"
        // A crashed run: the file is there, nobody accepts on it.
        let crashed = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(crashed, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        close(crashed)
        #expect(mode(path) != nil)
        let first = try StreamListenerSocket.unix(path: path)
        defer { first.close() }
        // A second daemon must not steal the socket of the first.
        #expect(throws: SystemError.self) { try StreamListenerSocket.unix(path: path) }
        #expect(mode(path) == 0o600, "the live socket is still there")
    }

    @Test func aFileThatIsNotASocketIsLeftAlone() throws {
        let directory = scratch("plain")
        defer { remove(directory) }
        let path = directory + "/vigil.sock"
        try AtomicFile.replace(path, with: Array("not a socket\n".utf8))
        #expect(throws: SystemError.self) { try StreamListenerSocket.unix(path: path) }
        #expect(contents(path) == "not a socket\n")
    }
}

@Suite struct AtomicFileTests {
    @Test func replacesWholeAndLeavesNoTemporary() throws {
        let directory = scratch("atomic")
        defer { remove(directory) }
        let path = directory + "/keepalived.json"
        try AtomicFile.replace(path, with: Array("[1]\n".utf8))
        try AtomicFile.replace(path, with: Array(String(repeating: "x", count: 100_000).utf8))
        #expect(contents(path)?.count == 100_000)
        #expect(mode(path) == 0o600, "root's only, as keepalived's")
        var names: [String] = []
        if let dir = opendir(directory) {
            while let entry = readdir(dir) {
                names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
            }
            closedir(dir)
        }
        #expect(names.sorted() == [".", "..", "keepalived.json"])
    }

    /// A symlink planted in /tmp is replaced, not followed (keepalived's fopen_safe concern).
    @Test func aPlantedSymlinkIsNotFollowed() throws {
        let directory = scratch("symlink")
        defer { remove(directory) }
        let victim = directory + "/victim"
        try AtomicFile.replace(victim, with: Array("precious\n".utf8))
        symlink(victim, directory + "/keepalived.stats")
        try AtomicFile.replace(directory + "/keepalived.stats", with: Array("stats\n".utf8))
        #expect(contents(victim) == "precious\n")
        #expect(contents(directory + "/keepalived.stats") == "stats\n")
    }

    @Test func aMissingDirectoryIsAnErrorNamingThePath() {
        #expect {
            try AtomicFile.replace("/nonexistent-vigil-dir/keepalived.data", with: [])
        } throws: { error in
            (error as? SystemError)?.description.contains("/nonexistent-vigil-dir/keepalived.data") == true
        }
    }
}

@Suite struct SystemdNotifySocketTests {
    /// A datagram socket bound to `name` (a path, or '@' for the abstract namespace).
    private func listen(_ name: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        let abstract = bytes[0] == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        return fd
    }

    private func receive(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 1024)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? String(decoding: buffer.prefix(n), as: UTF8.self) : nil
    }

    @Test(arguments: [true, false])
    func messagesArriveWhole(abstract: Bool) throws {
        let directory = scratch("notify")
        defer { remove(directory) }
        let name = abstract ? "@vigil-notify-test-\(getpid())" : directory + "/notify"
        let fd = listen(name)
        defer { close(fd) }
        let notifier = try SystemdNotifySocket(path: name)
        try notifier.send("READY=1\nMAINPID=\(getpid())\nSTATUS=MASTER on VI_1")
        try notifier.send("WATCHDOG=1")
        #expect(receive(fd) == "READY=1\nMAINPID=\(getpid())\nSTATUS=MASTER on VI_1")
        #expect(receive(fd) == "WATCHDOG=1")
    }

    @Test func nobodyListeningIsAnErrorNotABlock() throws {
        let notifier = try SystemdNotifySocket(path: "/nonexistent-vigil-dir/notify")
        #expect(throws: SystemError.self) { try notifier.send("READY=1") }
        #expect(throws: SystemError.self) { try SystemdNotifySocket(path: String(repeating: "x", count: 200)) }
    }
}
