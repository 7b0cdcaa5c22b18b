import Foundation

/// Source addresses for `MOSQ_OPT_BIND_ADDRESS` (bench `--bind`).
public enum SourceAddress {
    /// Why `address` cannot be a local source address (bind() to it on port 0 fails), or nil
    /// when it can (or is a name libmosquitto resolves itself). bind() fails locally, before any
    /// packet is sent: an address that is not this machine's gives EADDRNOTAVAIL.
    public static func problem(_ address: String) -> String? {
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        let fd: Int32
        let rc: Int32
        if inet_pton(AF_INET, address, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            rc = withUnsafePointer(to: &v4) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        } else if inet_pton(AF_INET6, address, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
            rc = withUnsafePointer(to: &v6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            return nil
        }
        let code = errno
        if fd >= 0 { close(fd) }
        guard fd >= 0 else { return nil }
        return rc == 0 ? nil : describe(address, errno: code)
    }

    /// "cannot use the source address X: …" for a failed bind().
    public static func describe(_ address: String, errno code: Int32) -> String {
        let reason: String
        switch code {
        case EADDRNOTAVAIL: reason = "it is not an address of this machine (bind: \(String(cString: strerror(code))))"
        case EAFNOSUPPORT, EINVAL: reason = "its address family cannot reach the broker (\(String(cString: strerror(code))))"
        case EACCES, EPERM: reason = "permission denied"
        default: reason = String(cString: strerror(code))
        }
        return "cannot use the source address \(address) (--bind): \(reason); pass addresses of this machine (`ip -brief address`), e.g. 127.0.0.1,127.0.0.2"
    }
}
