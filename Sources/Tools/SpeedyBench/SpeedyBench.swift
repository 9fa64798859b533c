import ArgumentParser

/// `speedy-bench`: throughput benchmarks whose figures go in docs/performance.md.
@main
struct SpeedyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speedy-bench",
        abstract: "Measure Speedy's throughput against its limits and references.",
        subcommands: [EngineBench.self, RegistryBench.self, MetadataBench.self]
    )
}
