import CFuzzerDriver
import ParserFuzzing

#if canImport(Glibc)
import Glibc
#endif

// The libFuzzer program. One binary serves every target: `SPEEDY_FUZZ_TARGET` names the parser a
// run drives (`Tests/Fuzz/run` sets it), so each corpus grows against its own parser. SwiftPM
// gives an executable its own main, so this main hands over to libFuzzer's driver.

/// The target of this run, set once before the driver starts.
nonisolated(unsafe) private var target: FuzzTarget?

let name = getenv("SPEEDY_FUZZ_TARGET").map { String(cString: $0) } ?? ""
guard let chosen = FuzzTarget.named(name) else {
    let names = FuzzTarget.all.map(\.name).joined(separator: ", ")
    let message = "speedy-fuzz: set SPEEDY_FUZZ_TARGET to one of: \(names)\n"
    _ = message.withCString { write(2, $0, strlen($0)) }
    exit(2)
}
target = chosen

/// One input, as libFuzzer calls it (its archive wants the symbol even though the driver is
/// handed the function).
@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if let target, let problem = target.runBlocking(input) {
        // A crash is what libFuzzer records, with the input that caused it.
        fatalError("\(target.name): \(problem)")
    }
    return 0
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in testOneInput(data, size) })
