using System.Text.Json.Serialization;

namespace Microagent.Protocol;

// Wire record of a data disk's mount (docs/ARCHITECTURE.md "Images and disks"). The host attaches each data disk as a
// virtio-blk device with a serial number (virtio spec §5.2.6, VIRTIO_BLK_T_GET_ID: at most 20 bytes; the Linux driver shows
// it as /sys/block/vdX/serial), then, after the agent's hello, asks for each mount:
//   host → guest AgentPort: Request{type:"mount", mount: MountRequest} → Response ok | error.
// Disks are found by serial, never by /dev/vdX order. A restored VM gets the same requests again.

/// <summary>Limits of <see cref="MountRequest"/>.</summary>
internal static class MountInfo
{
    /// <summary>Longest virtio-blk serial (VIRTIO_BLK_ID_BYTES).</summary>
    public const int MaxSerialBytes = 20;
}

/// <summary>Mount the block device whose virtio serial is <see cref="Serial"/> at <see cref="Target"/>.</summary>
internal sealed class MountRequest
{
    /// <summary>The device's virtio-blk serial (QEMU <c>-device virtio-blk-*,serial=</c>).</summary>
    [JsonPropertyName("serial")] public string Serial { get; set; } = "";
    /// <summary>Absolute guest directory; created when absent.</summary>
    [JsonPropertyName("target")] public string Target { get; set; } = "";
    /// <summary>Filesystem type (ext4).</summary>
    [JsonPropertyName("fstype")] public string FsType { get; set; } = "ext4";
    /// <summary>Mount read-only (the device itself is read-only too).</summary>
    [JsonPropertyName("readOnly")] public bool ReadOnly { get; set; }
}
