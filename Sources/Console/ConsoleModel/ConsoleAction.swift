import SpeedyCore

/// Something the operator asked the console to do to the cluster, once confirmed.
public enum ConsoleAction: Sendable, Equatable {
    /// Set a chunkserver's status (`RW` clears an operator's setting).
    case setStatus(server: String, status: ServerStatus)
    /// Run `chunktool verify` on a group; its progress shows in the jobs pane.
    case verify(group: UInt32)

    /// The question asked before it is done.
    public var question: String {
        switch self {
        case .setStatus(let server, let status):
            let effect =
                switch status {
                case .readOnly: "it stops taking writes"
                case .offline: "it serves nothing; its group degrades"
                default: "it takes reads and writes again"
                }
            return "Set \(server) to \(status.rawValue) (\(effect))? [y/N]"
        case .verify(let group):
            return "Verify group \(group): read every chunk on every member? [y/N]"
        }
    }

    /// What the footer says once it is sent.
    public var sent: String {
        switch self {
        case .setStatus(let server, let status): "setting \(server) to \(status.rawValue)…"
        case .verify(let group): "starting a verify of group \(group)…"
        }
    }
}

/// A question the console is asking; the next keys answer it.
public enum ConsolePrompt: Sendable, Equatable {
    /// Which status to set `server` to: w (RW), r (RO), o (OFFLINE).
    case chooseStatus(server: String)
    /// Whether to go ahead with an action.
    case confirm(ConsoleAction)

    /// The prompt line.
    public var text: String {
        switch self {
        case .chooseStatus(let server): "Set \(server) to: [w] RW  [r] RO  [o] OFFLINE   (Esc cancels)"
        case .confirm(let action): action.question
        }
    }
}
