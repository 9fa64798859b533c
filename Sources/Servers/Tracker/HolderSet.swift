/// The agents holding one blob: a set that can also hand out a few random members in time that
/// does not grow with its size, because a popular blob (a base layer on a whole fleet) has
/// thousands of holders and every lookup of it wants only ``Swarm/maxPeersPerLookup``.
struct HolderSet: Sendable {
    private var members: [String] = []
    private var positions: [String: Int] = [:]

    /// How many agents hold the blob.
    var count: Int { members.count }

    /// Whether no agent holds the blob.
    var isEmpty: Bool { members.isEmpty }

    /// Adds `agent` (no change when it is in already).
    mutating func insert(_ agent: String) {
        guard positions[agent] == nil else { return }
        positions[agent] = members.count
        members.append(agent)
    }

    /// Removes `agent` by moving the last member into its place, so removal stays O(1).
    mutating func remove(_ agent: String) {
        guard let position = positions.removeValue(forKey: agent) else { return }
        let last = members.removeLast()
        if position < members.count {
            members[position] = last
            positions[last] = position
        }
    }

    /// Up to `limit` distinct members that `accept` takes, in random order. A small set is
    /// shuffled whole; a large one is probed at random positions, a bounded number of times, so
    /// a set of mostly refused members (expired agents not swept yet) cannot stall a lookup.
    func sample(_ limit: Int, using generator: inout some RandomNumberGenerator, where accept: (String) -> Bool) -> [String] {
        if members.count <= limit * 4 {
            return Array(members.shuffled(using: &generator).lazy.filter(accept).prefix(limit))
        }
        var picked: Set<Int> = []
        var chosen: [String] = []
        var probes = 0
        while chosen.count < limit, probes < limit * 8 {
            probes += 1
            let position = Int.random(in: 0..<members.count, using: &generator)
            guard picked.insert(position).inserted, accept(members[position]) else { continue }
            chosen.append(members[position])
        }
        return chosen
    }
}
