/// The version of this build of Speedy, reported in heartbeats and by `--version`.
public enum SpeedyVersion {
    /// Semantic version of the release.
    public static let current = "0.15.0"
}
