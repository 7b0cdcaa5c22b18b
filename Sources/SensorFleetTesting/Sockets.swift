import Foundation

/// `127.0.0.1:port` as an IPv4 socket address (port 0: the kernel chooses): the one builder of a
/// `sockaddr_in` in the tests.
public func loopbackAddress(port: Int = 0) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    return address
}

/// Calls `body` with `address` as the `sockaddr` pointer and the length that `bind`, `connect`
/// and `getsockname` take (`getsockname` writes the address back).
public func withSocketAddress<T>(_ address: inout sockaddr_in, _ body: (UnsafeMutablePointer<sockaddr>, inout socklen_t) -> T) -> T {
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    return withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, &length) }
    }
}

/// The port a socket is bound to.
public func boundPort(_ fd: Int32) -> Int {
    var address = sockaddr_in()
    _ = withSocketAddress(&address) { getsockname(fd, $0, &$1) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A loopback port nobody listens on right now.
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = loopbackAddress()
    _ = withSocketAddress(&address) { bind(fd, $0, $1) }
    return boundPort(fd)
}

/// A listening TCP socket on 127.0.0.1 with a port the kernel chose (for the test's own
/// listeners: a silent TLS port, the TCP proxy).
public func loopbackListener(reuseAddress: Bool = false, backlog: Int32 = 64) throws -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    if reuseAddress {
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    }
    var address = loopbackAddress()
    let bound = withSocketAddress(&address) { bind(fd, $0, $1) }
    guard bound == 0, listen(fd, backlog) == 0 else {
        let reason = String(cString: strerror(errno))
        close(fd)
        throw TestFailure("cannot listen on 127.0.0.1: \(reason)")
    }
    return (fd, boundPort(fd))
}

/// Connects `fd` to 127.0.0.1:port; true when it worked.
public func connectLoopback(_ fd: Int32, port: Int) -> Bool {
    var address = loopbackAddress(port: port)
    return withSocketAddress(&address) { connect(fd, $0, $1) } == 0
}

/// True when something accepts TCP connections on 127.0.0.1:port.
public func isListening(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    return connectLoopback(fd, port: port)
}
