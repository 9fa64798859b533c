import RegistryClient
import SpeedyCore

extension SyncEndpoint {
    /// A client of the registry, with the login read from its file now.
    /// - Throws: a message naming the file or the URL at fault (never a password).
    public func makeClient() throws(SyncJobError) -> RegistryClient {
        var options = RegistryClient.Options(caFile: caFile)
        if let credentialsFile {
            do {
                options.credentials = try RegistryCredentials(file: credentialsFile)
            } catch {
                throw SyncJobError(error.description)
            }
        }
        do {
            return try RegistryClient(baseURL: url, options: options)
        } catch {
            throw SyncJobError("\(url): \(error)")
        }
    }
}
