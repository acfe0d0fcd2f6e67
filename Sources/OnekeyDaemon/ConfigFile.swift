import Foundation
import OnekeyCore
import OnekeyLinux

/// Reads and validates the configuration file; the error names FILE:LINE.
public enum ConfigFile {
    public static let defaultPath = "/etc/onekeyd/onekeyd.toml"

    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> GatewayConfig {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
            throw ConfigError(file: path, line: 0, message: "cannot read the configuration file: \(reason)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: 0, message: "the configuration file is not UTF-8")
        }
        return try ConfigLoader.parse(text, path: path, environment: environment)
    }
}
