import OnekeyCore

/// Configuration files: the TOML reader alone, then the whole loader (types, ranges, references).
/// Any failure must be an error naming a line inside the file (or 0 for the whole file).
enum ConfigFuzz {
    static func toml(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        do { _ = try TOML.parse(text) } catch { checkLine(error.line, text: text, message: error.message) }
    }

    static func config(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        do {
            let c = try ConfigLoader.parse(text, path: "fuzz.toml")
            invariant(ConfigLoader.isValidID(c.gateway.id), "accepted gateway id \(c.gateway.id)")
        } catch {
            invariant(error.file == "fuzz.toml", "error names file \(error.file)")
            checkLine(error.line, text: text, message: error.message)
        }
    }

    static func checkLine(_ line: Int, text: String, message: String) {
        let lines = text.utf8.reduce(1) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        invariant(line >= 0 && line <= lines + 1, "error at line \(line) of a \(lines)-line file: \(message)")
        invariant(!message.isEmpty, "empty error message")
    }
}
