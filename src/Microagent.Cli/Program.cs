using System.CommandLine;
using Microagent.Cli;
using Microagent.Cli.Commands;

var root = new RootCommand("""
    microagent — isolated Linux workspaces for AI agents: each one a small VM with its own kernel and an
    ext4 root disk built from an OCI image. Works with KVM where it is usable, and under QEMU TCG where it is not.

    Start here:
      microagent doctor                      check QEMU, the accelerator, the kernel
      microagent run -- uname -a             run one command in a fresh, throwaway VM
      microagent create NAME; microagent start NAME; microagent exec NAME -- CMD
                                             a named workspace that keeps its disk between boots
      microagent list                        workspaces and their state
      microagent kernel list                 installed kernels and their sha256
      microagent image pull IMAGE            fetch an image and build its ext4 baseline
    """);
root.Options.Add(GlobalOptions.Json);
root.Options.Add(GlobalOptions.StateDir);
root.Subcommands.Add(RunCommand.Create());
root.Subcommands.Add(CreateCommand.Create());
root.Subcommands.Add(StartCommand.Create());
root.Subcommands.Add(ExecCommand.Create());
root.Subcommands.Add(CpCommand.Create());
root.Subcommands.Add(StatusCommand.Create());
root.Subcommands.Add(ListCommand.Create());
root.Subcommands.Add(LogsCommand.Create());
root.Subcommands.Add(EventsCommand.Create());
root.Subcommands.Add(ResultCommand.Create());
root.Subcommands.Add(WaitCommand.Create());
root.Subcommands.Add(HaltCommand.Create());
root.Subcommands.Add(HaltCommand.CreateKill());
root.Subcommands.Add(PauseCommand.Create());
root.Subcommands.Add(PauseCommand.CreateResume());
root.Subcommands.Add(DeleteCommand.Create());
root.Subcommands.Add(GcCommand.Create());
root.Subcommands.Add(ImageCommand.Create());
root.Subcommands.Add(RegistryCommand.Create());
root.Subcommands.Add(KernelCommand.Create());
root.Subcommands.Add(DoctorCommand.Create());
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(VersionCommand.Create());
root.Subcommands.Add(SuperviseCommand.Create());
return await Cli.InvokeAsync(root, args);
