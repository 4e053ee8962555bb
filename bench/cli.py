"""The root `virtlab` command: global options, docker exit codes, and lazily mounted command groups.

Each subcommand lives in the package that owns it and is imported only when it is
called, so `virtlab run` never loads pandas, matplotlib or libvirt. The `virtlab` executable
starts in bench.entry, which runs a plain `virtlab run` without click and hands the rest here.
"""

from __future__ import annotations

import gc
import importlib
import os

# First: in the CLI process itself it turns the cyclic collector off (gc_on() turns it back on).
from bench.entry import debug_wanted, guarded  # isort: skip

import click  # after the collector is off

from runtime.cli import DEFAULT_ROOT, root_of  # noqa: F401 - root_of: for the commands of bench/

# name -> (module, attribute, one-line help). The help is here so that
# `virtlab --help` does not import every package to list the commands.
COMMANDS: dict[str, tuple[str, str, str]] = {
    # containers (runtime/cli/containers.py)
    "create": ("runtime.cli.containers", "create", "Create a new container"),
    "run": ("runtime.cli.runcmd", "run", "Create and run a new container from an image"),
    "start": ("runtime.cli.containers", "start", "Start one or more stopped containers"),
    "stop": ("runtime.cli.containers", "stop", "Stop one or more running containers"),
    "restart": ("runtime.cli.containers", "restart", "Restart one or more containers"),
    "kill": ("runtime.cli.containers", "kill", "Kill one or more running containers"),
    "pause": ("runtime.cli.containers", "pause", "Pause all processes within one or more containers"),
    "unpause": ("runtime.cli.containers", "unpause", "Unpause all processes within one or more containers"),
    "wait": ("runtime.cli.containers", "wait", "Block until containers stop, then print their exit codes"),
    "rename": ("runtime.cli.containers", "rename", "Rename a container"),
    "attach": ("runtime.cli.containers", "attach", "Attach to a running container's output (and input)"),
    "exec": ("runtime.cli.containers", "exec_", "Run a command in a running container"),
    "logs": ("runtime.cli.containers", "logs", "Fetch the logs of a container"),
    "ps": ("runtime.cli.containers", "ps", "List containers"),
    "rm": ("runtime.cli.containers", "rm", "Remove one or more containers"),
    "inspect": ("runtime.cli.containers", "inspect", "Return low-level information on containers or images"),
    "top": ("runtime.cli.containers", "top", "Display the running processes of a container"),
    "stats": ("runtime.cli.containers", "stats", "Display a live stream of container resource usage"),
    "cp": ("runtime.cli.containers", "cp", "Copy files between a container and the host"),
    "diff": ("runtime.cli.containers", "diff", "Inspect changes to files on a container's filesystem"),
    "port": ("runtime.cli.containers", "port", "List port mappings of a container"),
    "update": ("runtime.cli.containers", "update", "Update the resource limits of one or more containers"),
    "export": ("runtime.cli.containers", "export", "Export a container's filesystem as a tar archive"),
    "commit": ("runtime.cli.containers", "commit", "Create a new image from a container's changes"),
    "container": ("runtime.cli.containers", "container", "Manage containers"),
    "volume": ("runtime.cli.volumes", "volume", "Manage volumes"),
    "network": ("runtime.cli.network", "network", "Manage networks"),
    # images (runtime/cli/images.py)
    "pull": ("runtime.cli.images", "pull", "Download an image from a registry"),
    "push": ("runtime.cli.images", "push", "Upload an image to a registry"),
    "login": ("runtime.cli.images", "login", "Log in to a registry"),
    "logout": ("runtime.cli.images", "logout", "Log out from a registry"),
    "search": ("runtime.cli.images", "search", "Search a registry's catalog for images"),
    "images": ("runtime.cli.images", "images", "List images"),
    "tag": ("runtime.cli.images", "tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    "rmi": ("runtime.cli.images", "rmi", "Remove one or more images"),
    "save": ("runtime.cli.images", "save", "Save one or more images to a tar archive"),
    "load": ("runtime.cli.images", "load", "Load an image from a tar archive or STDIN"),
    "import": ("runtime.cli.images", "import_", "Import a tarball to create a filesystem image"),
    "history": ("runtime.cli.images", "history", "Show the history of an image"),
    "image": ("runtime.cli.images", "image", "Manage images (build the default ones, prune, ...)"),
    "system": ("runtime.cli.images", "system", "Manage virtlab (df, prune)"),
    # VMs, harness, reports, host checks
    "vm": ("vmdriver.cli", "vm", "Boot the same images as virtual machines (libvirt/QEMU)"),
    "bench": ("bench.commands", "bench", "Run benchmark suites: containers vs VMs vs native"),
    "report": ("reports.cli", "report", "Turn results directories into the comparison report"),
    "doctor": ("bench.doctor", "doctor", "Check this host: kernel, cgroups, KVM, libvirt, peers"),
}


# Commands that keep the cyclic collector off until they have done their short work (see gc_on).
FAST = frozenset({"run", "create", "start", "stop", "kill", "rm", "ps", "inspect"})


def gc_on() -> None:
    """Turn the cyclic collector back on for a command that may run long (or allocate a lot).

    What exists now is frozen first, so the first collection does not walk the whole start-up heap.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Name every command without importing any of them."""
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import and return the command named `cmd_name`, or None if unknown."""
        if cmd_name not in FAST:
            gc_on()
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return self.commands.get(cmd_name)
        module_name, attr, _ = entry
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                return _not_built(cmd_name, module_name)
            raise
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List commands with their stored one-line help (no imports)."""
        rows = [
            (name, COMMANDS[name][2] if name in COMMANDS else self.commands[name].get_short_help_str())
            for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _not_built(cmd_name: str, module_name: str) -> click.Command:
    """A placeholder that says plainly that a command is not built yet (exit 125)."""

    @click.command(cmd_name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def missing() -> None:
        raise click.ClickException(f"'virtlab {cmd_name}' is not available yet ({module_name} is missing)")

    return missing


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root",
    envvar="VIRTLAB_ROOT",
    default=DEFAULT_ROOT,
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where virtlab keeps its store and state (env VIRTLAB_ROOT).",
)
@click.option("--debug", "-D", is_flag=True, envvar="VIRTLAB_DEBUG", help="Show tracebacks on errors.")
@click.version_option(package_name="virtlab", prog_name="virtlab")
@click.pass_context
def cli(ctx: click.Context, root: str, debug: bool) -> None:
    """virtlab: see what containers and virtual machines really cost on this machine."""
    ctx.obj = {"root": os.path.abspath(root), "debug": debug}


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and map every failure to a docker-style exit code (bench.entry.guarded).

    125: error in virtlab itself (bad flag, unknown name, failed operation);
    126/127 and the container's own codes are raised by the commands as SystemExit.
    """
    guarded(lambda: cli.main(args=argv, prog_name="virtlab", standalone_mode=False), debug_wanted(argv))
