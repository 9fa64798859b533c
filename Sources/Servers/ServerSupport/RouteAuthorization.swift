import HTTPTypes
import SpeedyCore

/// Which role may call which route of an internal port, when the cluster has a role table
/// (``SpeedyCore/RoleTable``): what ``ClusterSecretMiddleware`` checks after it knows who calls.
///
/// Rules are read in order and the first whose method and path match decides. A path is written as
/// the route is registered: `{name}` stands for one segment and a final `**` for any rest. A route
/// no rule names is for ``SpeedyCore/ClusterRole/operator`` alone, so a route added without a
/// rule fails closed. The operator may call everything. Each role's table is in
/// `RouteAuthorization+Roles.swift`, and docs/security.md prints them.
public struct RouteAuthorization: Sendable {
    /// One line of the table.
    public struct Rule: Sendable, CustomStringConvertible {
        /// The methods it covers; empty for every method.
        public let methods: Set<HTTPRequest.Method>
        /// The path pattern, split in segments.
        let segments: [Substring]
        /// The pattern as written.
        public let path: String
        /// The roles (besides the operator) it lets in.
        public let roles: Set<ClusterRole>

        /// A rule letting `roles` call `methods` (all, when empty) of `path`.
        public init(_ methods: [HTTPRequest.Method], _ path: String, _ roles: Set<ClusterRole>) {
            self.methods = Set(methods)
            self.path = path
            self.segments = path.split(separator: "/")
            self.roles = roles
        }

        /// The methods' names, sorted (`GET`, `PUT`...); empty for every method.
        public var methodNames: [String] { methods.map(\.rawValue).sorted() }

        /// Whether the rule covers `method` on `routed` (a ``RoutedPath``).
        func matches(_ method: HTTPRequest.Method, _ routed: [Substring]) -> Bool {
            guard methods.isEmpty || methods.contains(method) else { return false }
            for (index, pattern) in segments.enumerated() {
                if pattern == "**" { return index == segments.count - 1 }
                guard index < routed.count else { return false }
                if pattern.hasPrefix("{") && pattern.hasSuffix("}") { continue }
                guard pattern == routed[index] else { return false }
            }
            return routed.count == segments.count
        }

        /// `METHODS path: roles`, for messages.
        public var description: String {
            let verbs = methods.isEmpty ? "*" : methods.map(\.rawValue).sorted().joined(separator: ",")
            return "\(verbs) \(path): \(roles.sorted().map(\.rawValue).joined(separator: ", "))"
        }
    }

    /// The server role the table guards (`chunkmaster`, `metaserver`...), for messages.
    public let server: String
    /// The rules, first match wins.
    public let rules: [Rule]

    /// A table for `server`'s port.
    public init(server: String, rules: [Rule]) {
        self.server = server
        self.rules = rules
    }

    /// Whether `role` may call `method` on `routed` (a ``RoutedPath``).
    public func allows(_ role: ClusterRole, _ method: HTTPRequest.Method, _ routed: String) -> Bool {
        if role == .operator { return true }
        let pieces = routed.split(separator: "/")
        guard let rule = rules.first(where: { $0.matches(method, pieces) }) else { return false }
        return rule.roles.contains(role)
    }

    /// The rule that decides `method` on `routed`, if any (for messages and tests).
    public func rule(for method: HTTPRequest.Method, _ routed: String) -> Rule? {
        let pieces = routed.split(separator: "/")
        return rules.first { $0.matches(method, pieces) }
    }
}
