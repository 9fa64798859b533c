import CNcurses
import ConsoleModel

/// The curses screen: the only place ncurses is called, always from the main thread.
final class Terminal {
    /// Whether colours are in use (no: monochrome terminal, or NO_COLOR set).
    let colors: Bool
    private var open = true

    /// Takes over the terminal. `allowColor` false honours NO_COLOR.
    init(allowColor: Bool) throws {
        let result = speedy_start(allowColor ? 1 : 0)
        guard result >= 0 else { throw TerminalError() }
        colors = result == 1
    }

    struct TerminalError: Error, CustomStringConvertible {
        var description: String { "cannot start the terminal (is TERM set?)" }
    }

    var size: (width: Int, height: Int) { (Int(speedy_cols()), Int(speedy_lines())) }

    /// Paints `lines` (already fitted to the width).
    func draw(_ lines: [ScreenLine]) {
        speedy_erase()
        let (width, height) = size
        for (y, line) in lines.prefix(height).enumerated() {
            var x = 0
            for span in line.spans where x < width {
                // The bottom-right cell cannot be written without scrolling; leave it.
                let room = y == height - 1 ? width - 1 - x : width - x
                guard room > 0 else { break }
                let text = span.text.count > room ? String(span.text.prefix(room)) : span.text
                speedy_draw(Int32(y), Int32(x), text, Int32(Self.code(span.style)))
                x += text.count
            }
        }
        speedy_refresh()
    }

    /// The next key, waiting at most 100 ms; `.resize` on a terminal resize, nil on none.
    func readKey() -> TerminalEvent? {
        let code = speedy_getch()
        switch code {
        case -1: return nil
        case speedy_key_resize(): return .resize
        case speedy_key_up(): return .key(.up)
        case speedy_key_down(): return .key(.down)
        case speedy_key_pgup(): return .key(.pageUp)
        case speedy_key_pgdown(): return .key(.pageDown)
        case speedy_key_enter(), 10, 13: return .key(.enter)
        case speedy_key_backspace(), 127, 8: return .key(.backspace)
        case 9: return .key(.tab)
        case 27: return .key(.escape)
        case 47: return .key(.slash)
        case 63: return .key(.help)
        case 32...126: return .key(.character(Character(UnicodeScalar(UInt8(code)))))
        default: return nil
        }
    }

    /// Gives the terminal back as it was. Safe to call more than once.
    func close() {
        guard open else { return }
        open = false
        speedy_stop()
    }

    private static func code(_ style: TextStyle) -> Int {
        switch style {
        case .normal: 0
        case .title: 1
        case .heading: 2
        case .dim: 3
        case .selected: 4
        case .banner: 5
        case .healthy: 6
        case .degraded: 7
        case .readOnly: 8
        case .down: 9
        case .transferring: 10
        case .accent: 11
        }
    }
}

/// Input from the terminal.
enum TerminalEvent {
    case key(ConsoleKey)
    case resize
}
