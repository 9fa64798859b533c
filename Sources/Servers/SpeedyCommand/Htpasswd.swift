import ArgumentParser
import CommandLineSupport
import Foundation
import ImageServer
import SpeedyCore

/// `speedy htpasswd USER`: an htpasswd line with a bcrypt hash, for the imageserver's --htpasswd
/// file, without Apache's tools.
struct Htpasswd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "htpasswd",
        abstract: "Print an htpasswd line (bcrypt) for a registry user.",
        discussion: """
            Reads the password from standard input (one line; pipe it in, or type it), never from \
            the command line, where other users could see it. Append the line to the file given to \
            `speedy imageserver --htpasswd`, then send the imageserver SIGHUP. Example:
              printf '%s\\n' "$PASSWORD" | speedy htpasswd alice >> htpasswd
            A password is at most 72 bytes and has no NUL byte: bcrypt reads no further, so the \
            rest would not count.
            """
    )

    @Argument(help: "The user name (printable ASCII, no spaces or ':').")
    var user: String

    @Option(help: "bcrypt cost: each step doubles the work of checking (and of guessing).")
    var cost = 10

    func validate() throws {
        guard !user.isEmpty, user.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ":") }) else {
            throw ValidationError("a user name is printable ASCII without spaces or ':'")
        }
        guard (4...16).contains(cost) else { throw ValidationError("--cost must be between 4 and 16") }
    }

    func run() throws {
        guard let password = readLine(strippingNewline: true), !password.isEmpty else {
            throw ValidationError("no password on standard input")
        }
        // bcrypt would hash it cut short, and then accept anything in place of the rest.
        if let problem = UserFile.passwordProblem(password) { throw couldNotRun(problem) }
        print(UserFile.line(user: user, password: password, cost: UInt8(cost)))
    }
}
