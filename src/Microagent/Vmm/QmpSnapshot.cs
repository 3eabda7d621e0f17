using System.Text.Json.Nodes;
using Microagent.Errors;

namespace Microagent.Vmm;

/// <summary>
/// The QMP commands of a VM state save and restore (QEMU qapi/migration.json, qapi/block-core.json, qapi/qdev.json;
/// docs/ARCHITECTURE.md "Snapshots"). The vhost-user vsock device is not migratable, so a save unplugs it first
/// (<c>device_del</c>, then <c>DEVICE_DELETED</c>) and plugs it back after (<c>device_add</c>); memory goes to a <c>file:</c>
/// with the <c>mapped-ram</c> capability (a sparse file, one offset per page) at unlimited bandwidth; the disk's current qcow2
/// layer is frozen by <c>blockdev-snapshot-sync</c> (a new overlay on top takes the writes). Waiting uses QMP events read
/// through <see cref="WaitEvent"/>.
/// </summary>
internal static class QmpSnapshot
{
    /// <summary>Reads QMP events until one named <paramref name="name"/> satisfying the predicate arrives; throws <see cref="IOException"/> when QEMU is gone.</summary>
    public delegate Task<QmpEvent> WaitEvent(string name, Func<QmpEvent, bool> match, CancellationToken ct);

    /// <summary>QMP event: a device was removed (after the guest ejected it).</summary>
    public const string DeviceDeleted = "DEVICE_DELETED";
    /// <summary>QMP event: the migration state changed (with the <c>events</c> capability).</summary>
    public const string Migration = "MIGRATION";

    /// <summary>Hot-unplugs device <paramref name="id"/> and waits until it is gone (the guest must be running to eject it).</summary>
    public static async Task UnplugAsync(QmpClient qmp, WaitEvent wait, string id, CancellationToken ct)
    {
        await qmp.ExecuteAsync("device_del", new JsonObject { ["id"] = id }, ct).ConfigureAwait(false);
        await wait(DeviceDeleted, e => e.Text("device") == id, ct).ConfigureAwait(false);
    }

    /// <summary>Hot-plugs the vhost-user vsock device back (<see cref="QemuCommandLine.VsockPciDriver"/> on its pinned slot).</summary>
    public static async Task PlugVsockAsync(QmpClient qmp, CancellationToken ct) =>
        await qmp.ExecuteAsync("device_add", new JsonObject
        {
            ["driver"] = QemuCommandLine.VsockPciDriver,
            ["id"] = QemuCommandLine.VsockDeviceId,
            ["chardev"] = QemuCommandLine.VsockChardevId,
            ["addr"] = QemuCommandLine.VsockPciSlot,
        }, ct).ConfigureAwait(false);

    /// <summary>Sets the capabilities of a file save or load: <c>mapped-ram</c> and <c>events</c>.</summary>
    private static async Task SetCapabilitiesAsync(QmpClient qmp, CancellationToken ct) =>
        await qmp.ExecuteAsync("migrate-set-capabilities", new JsonObject
        {
            ["capabilities"] = new JsonArray(
                new JsonObject { ["capability"] = "mapped-ram", ["state"] = true },
                new JsonObject { ["capability"] = "events", ["state"] = true }),
        }, ct).ConfigureAwait(false);

    /// <summary>Saves the (stopped) VM's state into <paramref name="path"/> and waits for the migration to complete.</summary>
    public static async Task SaveStateAsync(QmpClient qmp, WaitEvent wait, string path, CancellationToken ct)
    {
        await SetCapabilitiesAsync(qmp, ct).ConfigureAwait(false);
        await qmp.ExecuteAsync("migrate-set-parameters", new JsonObject { ["max-bandwidth"] = 0 }, ct).ConfigureAwait(false);
        await qmp.ExecuteAsync("migrate", new JsonObject { ["uri"] = "file:" + path }, ct).ConfigureAwait(false);
        await WaitMigrationAsync(qmp, wait, "save", ct).ConfigureAwait(false);
    }

    /// <summary>Loads a state saved by <see cref="SaveStateAsync"/> into a QEMU started with <c>-incoming defer</c>; the VM stays stopped.</summary>
    public static async Task LoadStateAsync(QmpClient qmp, WaitEvent wait, string path, CancellationToken ct)
    {
        await SetCapabilitiesAsync(qmp, ct).ConfigureAwait(false);
        await qmp.ExecuteAsync("migrate-incoming", new JsonObject { ["uri"] = "file:" + path }, ct).ConfigureAwait(false);
        await WaitMigrationAsync(qmp, wait, "load", ct).ConfigureAwait(false);
    }

    private static async Task WaitMigrationAsync(QmpClient qmp, WaitEvent wait, string what, CancellationToken ct)
    {
        var end = await wait(Migration, e => e.Text("status") is "completed" or "failed" or "cancelled", ct).ConfigureAwait(false);
        if (end.Text("status") == "completed") return;
        string? why = null;
        try { why = (await qmp.ExecuteAsync("query-migrate", null, ct).ConfigureAwait(false))?["error-desc"]?.GetValue<string>(); }
        catch (Exception e) when (e is MicroagentException or IOException) { }
        throw MicroagentException.Permanent($"the VM state {what} {end.Text("status")}{(why is null ? "" : $": {why}")}");
    }

    /// <summary>
    /// Freezes the current top layer of drive <paramref name="device"/>: a new qcow2 overlay at <paramref name="overlay"/> (node
    /// <paramref name="nodeName"/>) takes the writes from now on, and its header names <paramref name="backing"/> as its backing
    /// file (a second name of the frozen layer, which the caller made).
    /// </summary>
    public static async Task FreezeDiskAsync(QmpClient qmp, string device, string overlay, string nodeName, string backing, CancellationToken ct)
    {
        await qmp.ExecuteAsync("blockdev-snapshot-sync", new JsonObject
        {
            ["device"] = device, ["snapshot-file"] = overlay, ["snapshot-node-name"] = nodeName,
            ["format"] = "qcow2", ["mode"] = "absolute-paths",
        }, ct).ConfigureAwait(false);
        await qmp.ExecuteAsync("change-backing-file", new JsonObject
        {
            ["device"] = device, ["image-node-name"] = nodeName, ["backing-file"] = backing,
        }, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Dumps the (stopped) guest's memory into <paramref name="path"/> as an ELF core (<c>dump-guest-memory</c>, qapi/dump.json:
    /// no paging, synchronous): a forensic capture, which unlike a migration needs no device to be migratable and never runs the guest.
    /// </summary>
    public static async Task DumpMemoryAsync(QmpClient qmp, string path, CancellationToken ct) =>
        await qmp.ExecuteAsync("dump-guest-memory", new JsonObject
        {
            ["paging"] = false, ["protocol"] = "file:" + path, ["detach"] = false,
        }, ct).ConfigureAwait(false);
}
