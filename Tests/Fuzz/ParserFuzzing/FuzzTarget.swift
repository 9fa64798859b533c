import Dispatch
import Synchronization

/// One parser of request input as a fuzzer drives it: bytes in, and what the parser made of
/// them checked for consistency (a value that parses must format back to itself, stay inside its
/// bounds, and so on).
///
/// The same check runs three ways: `swift test` replays the corpus in `Tests/Fuzz/corpus/<name>/`
/// and mutates it with a seeded generator; `Tests/Fuzz/run` hands it to libFuzzer, built with
/// coverage and AddressSanitizer, which grows inputs toward the branches it has not reached. A
/// parser that traps (an overflow, an index out of range) fails all three by itself; a check that
/// finds an inconsistency returns what it found.
public struct FuzzTarget: Sendable {
    /// The target's name: its corpus directory and the value of `SPEEDY_FUZZ_TARGET`.
    public let name: String
    /// What input the parser takes, for `Tests/Fuzz/run --list`.
    public let summary: String
    private let check: Check

    /// Most parsers are synchronous; the token check awaits jwt-kit's key collection, an actor.
    private enum Check: Sendable {
        case sync(@Sendable ([UInt8]) -> String?)
        case async(@Sendable ([UInt8]) async -> String?)
    }

    init(_ name: String, _ summary: String, check: @escaping @Sendable ([UInt8]) -> String?) {
        self.name = name
        self.summary = summary
        self.check = .sync(check)
    }

    init(_ name: String, _ summary: String, asyncCheck: @escaping @Sendable ([UInt8]) async -> String?) {
        self.name = name
        self.summary = summary
        self.check = .async(asyncCheck)
    }

    /// Feeds `input` to the parser; nil when what it made of it is consistent, else what is not.
    public func run(_ input: [UInt8]) async -> String? {
        switch check {
        case .sync(let check): check(input)
        case .async(let check): await check(input)
        }
    }

    /// ``run(_:)`` for libFuzzer's callback, which is synchronous: an asynchronous check runs as a
    /// task while the calling thread waits. Only for a thread of its own (the fuzzer's main thread),
    /// never for one of Swift's cooperative pool, which the task may need.
    public func runBlocking(_ input: [UInt8]) -> String? {
        switch check {
        case .sync(let check):
            return check(input)
        case .async(let check):
            let done = DispatchSemaphore(value: 0)
            let result = Mutex<String?>(nil)
            Task {
                let problem = await check(input)
                result.withLock { $0 = problem }
                done.signal()
            }
            done.wait()
            return result.withLock { $0 }
        }
    }

    /// Every target, one per parser of request input.
    public static let all: [FuzzTarget] = registry + security + tokens + cluster

    /// The target called `name`, if there is one.
    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }
}

/// Input bytes as text, the way a header or a path reaches a parser: invalid UTF-8 is repaired
/// with U+FFFD, as `String(decoding:as:)` does for the HTTP layer.
func text(_ input: [UInt8]) -> String { String(decoding: input, as: UTF8.self) }

/// A failure when `condition` does not hold.
func expect(_ condition: Bool, _ message: @autoclosure () -> String) -> String? {
    condition ? nil : message()
}

/// The first failure of several checks.
func first(_ checks: String?...) -> String? { checks.lazy.compactMap { $0 }.first }
