using System.CommandLine;
using Microagent.Cli;
using Microagent.Cli.Commands;

var root = new RootCommand("""
    microagent — isolated Linux workspaces for AI agents: each a small VM with its own kernel and an ext4 disk from an OCI image.
    Start with `microagent doctor`, then `microagent run debian:12 uname -a`. `microagent VERB --help` shows a verb's examples.
    """);
root.Options.Add(GlobalOptions.Json);
root.Options.Add(GlobalOptions.StateDir);
root.Subcommands.Add(RunCommand.Create());
root.Subcommands.Add(CreateCommand.Create());
root.Subcommands.Add(StartCommand.Create());
root.Subcommands.Add(ExecCommand.Create());
root.Subcommands.Add(ConnectCommand.Create());
root.Subcommands.Add(CpCommand.Create());
root.Subcommands.Add(StatusCommand.Create());
root.Subcommands.Add(ListCommand.Create());
root.Subcommands.Add(StatsCommand.CreatePs());
root.Subcommands.Add(StatsCommand.Create());
root.Subcommands.Add(LogsCommand.Create());
root.Subcommands.Add(EventsCommand.Create());
root.Subcommands.Add(EgressCommand.Create());
root.Subcommands.Add(ResultCommand.Create());
root.Subcommands.Add(WaitCommand.Create());
root.Subcommands.Add(HaltCommand.Create());
root.Subcommands.Add(HaltCommand.CreateKill());
root.Subcommands.Add(PauseCommand.Create());
root.Subcommands.Add(PauseCommand.CreateResume());
root.Subcommands.Add(QuarantineCommand.Create());
root.Subcommands.Add(SnapshotCommand.Create());
root.Subcommands.Add(TemplateCommand.Create());
root.Subcommands.Add(DeleteCommand.Create());
root.Subcommands.Add(GcCommand.Create());
root.Subcommands.Add(ImageCommand.Create());
root.Subcommands.Add(VolumeCommand.Create());
root.Subcommands.Add(ModelCommand.Create());
root.Subcommands.Add(RegistryCommand.Create());
root.Subcommands.Add(KernelCommand.Create());
root.Subcommands.Add(ProfilesCommand.Create());
root.Subcommands.Add(DoctorCommand.Create());
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(VersionCommand.Create());
root.Subcommands.Add(SuperviseCommand.Create());
return await Cli.InvokeAsync(root, args);
