import HummingbirdBcrypt
import SpeedyCore

extension UserFile {
    /// An htpasswd line for `user` with a bcrypt hash of `password`.
    public static func line(user: String, password: String, cost: UInt8 = 10) -> String {
        "\(user):\(Bcrypt.hash(password, cost: cost))"
    }
}
