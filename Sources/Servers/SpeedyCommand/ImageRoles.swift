import ArgumentParser
import ImageServer
import MetaServer
import ServerSupport
import SpeedyCore

struct MetaServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metaserver",
        abstract: "Run the metaserver: blobs, manifests, tags and upload sessions (SQLite).",
        discussion: "Its state lives in DIR/meta.sqlite. Imageservers reach it through --meta."
    )

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen = HostPort(host: "127.0.0.1", port: 8100)

    @Option(help: "Directory for the metaserver's database.")
    var data = "./speedy-data/meta"

    @OptionGroup var security: RoleSecurityOptions

    func run() async throws {
        let security = try security.resolve(role: "metaserver", masterURL: nil)
        try await MetaServer.run(.init(listen: listen, dataDirectory: data, security: security))
    }
}

struct ImageServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "imageserver",
        abstract: "Run an imageserver: the OCI Distribution API that docker, podman and skopeo push to and pull from.",
        discussion: """
            Stateless: blobs are cut into --chunk-size chunks written to every member of a chunkserver \
            group; metadata goes to the metaserver. Run as many as you like side by side.
            """
    )

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen = HostPort(host: "127.0.0.1", port: 6788)

    @Option(help: "Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).")
    var master: String?

    @Option(help: "Base URL of the metaserver.")
    var meta = "http://127.0.0.1:8100"

    @Option(help: "Size of the chunks blobs are cut into.")
    var chunkSize = SizeArgument(bytes: 4 << 20)

    @Option(help: "Chunk bytes held in memory at once across all requests.")
    var memoryBudget = SizeArgument(bytes: 96 << 20)

    @OptionGroup var security: RoleSecurityOptions

    func validate() throws {
        guard chunkSize.bytes >= 64 << 10, chunkSize.bytes <= 16 << 20 else {
            throw ValidationError("--chunk-size must be between 64 KiB and 16 MiB (the chunkservers' default limit)")
        }
        guard memoryBudget.bytes >= 2 * chunkSize.bytes else { throw ValidationError("--memory-budget must hold at least two chunks") }
    }

    func run() async throws {
        let masterURL = MasterLocation.resolve(flag: master)
        let security = try security.resolve(role: "imageserver", masterURL: masterURL)
        var configuration = ImageServerConfiguration(
            listen: listen, masterURL: masterURL, metaURL: MasterLocation.normalize(meta),
            chunkSize: Int(chunkSize.bytes), memoryBudget: Int(memoryBudget.bytes))
        configuration.transport = security.transport
        try await ImageServer.run(configuration)
    }
}
