/// An empty JSON object, the answer of calls that return nothing.
public struct Empty: Codable, Sendable {
    public init() {}
}
