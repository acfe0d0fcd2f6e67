import CUdev
import Glibc

/// A device udev knows, with the properties our rules set (udev-rules/60-onekeyd.rules):
/// `ONEKEY_DRIVER` (ev1527 | surgard | evdev) marks a panic-button receiver.
public struct UdevDevice: Sendable, Equatable {
    public var syspath: String
    public var devnode: String?
    public var subsystem: String
    public var properties: [String: String]

    public var onekeyDriver: String? { properties["ONEKEY_DRIVER"] }
}

/// libudev enumeration (runs under umockdev in tests, since umockdev fakes sysfs for libudev).
public enum Udev {
    /// Devices in `subsystems` that carry `ONEKEY_DRIVER`.
    public static func enumerateReceivers(subsystems: [String] = ["tty", "input"]) throws(SystemError) -> [UdevDevice] {
        guard let udev = udev_new() else { throw SystemError("udev_new") }
        defer { udev_unref(udev) }
        var out = [UdevDevice]()
        for subsystem in subsystems {
            guard let e = udev_enumerate_new(udev) else { throw SystemError("udev_enumerate_new") }
            defer { udev_enumerate_unref(e) }
            udev_enumerate_add_match_subsystem(e, subsystem)
            udev_enumerate_add_match_property(e, "ONEKEY_DRIVER", "*")
            _ = udev_enumerate_scan_devices(e)
            var entry = udev_enumerate_get_list_entry(e)
            while let current = entry {
                defer { entry = udev_list_entry_get_next(current) }
                guard let name = udev_list_entry_get_name(current),
                      let dev = udev_device_new_from_syspath(udev, name) else { continue }
                defer { udev_device_unref(dev) }
                var props = [String: String]()
                var p = udev_device_get_properties_list_entry(dev)
                while let prop = p {
                    if let k = udev_list_entry_get_name(prop), let v = udev_list_entry_get_value(prop) {
                        props[String(cString: k)] = String(cString: v)
                    }
                    p = udev_list_entry_get_next(prop)
                }
                guard props["ONEKEY_DRIVER"] != nil else { continue }
                out.append(UdevDevice(syspath: String(cString: name),
                                      devnode: udev_device_get_devnode(dev).map { String(cString: $0) },
                                      subsystem: subsystem, properties: props))
            }
        }
        return out
    }
}
