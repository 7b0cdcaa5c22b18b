#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Source addresses for `MOSQ_OPT_BIND_ADDRESS` (bench `--bind`).
public enum SourceAddress {
    /// Why `address` cannot be a local source address (bind() to it on port 0 fails), or nil
    /// when it can (or is a name libmosquitto resolves itself). bind() fails locally, before any
    /// packet is sent: an address that is not this machine's gives EADDRNOTAVAIL.
    public static func problem(_ address: String) -> String? {
        guard let socketAddress = SocketAddress(host: address, port: 0) else { return nil }
        let fd = socket(socketAddress.family, Int32(SOCK_STREAM.rawValue), 0)
        let rc = socketAddress.withSockaddr { bind(fd, $0, $1) }
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
