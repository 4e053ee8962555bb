"""Which tests cover each case of SECURITY.md's bad-input corpus (63 cases), and proof they exist and run.

INDEX maps a case number to test node ids (`path::function`, parameters left out). Tests named
`test_caseNN_...` (or `test_NN_...` in the VM driver's corpus file) are found automatically and
added. The checks: every listed test exists (found by parsing the test files, no import), none
is marked `slow` or `bench` (so `make test` runs it), and at least 60 cases are covered; the
gaps are printed by name. Keep the index up to date when a test moves: this file fails first.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CASES = 63
NEEDED = 60

E = "tests/integration/engine/test_fs_security.py"
EC = "tests/integration/engine/test_cli.py"
EL = "tests/integration/engine/test_lifecycle.py"
OCI = "tests/integration/oci/test_oci_security.py"
OL = "tests/integration/oci/test_oci_lifecycle.py"
IM = "tests/unit/image"
R = "tests/reliability/test_corpus_cases.py"
RF = "tests/reliability/test_registry_failure.py"
VD = "tests/unit/vmdriver"
REP = "tests/unit/reports"

INDEX: dict[int, list[str]] = {
    25: [f"{IM}/test_image_reference_digest.py::test_bad_references_rejected"],
    31: [f"{IM}/test_image_archive.py::test_unexpected_members_are_refused",
         f"{IM}/test_image_archive.py::test_multi_image_archive_is_all_or_nothing"],
    33: [f"{IM}/test_image_registry_client.py::test_500_is_retried_a_bounded_number_of_times",
         f"{IM}/test_image_registry_client.py::test_redirect_loop_is_bounded",
         f"{IM}/test_image_registry_client.py::test_token_realm_on_another_host_gets_no_credentials",
         f"{IM}/test_image_registry_client.py::test_truncated_bodies_keep_partial_for_resume",
         f"{IM}/test_image_registry_client.py::test_credentials_never_follow_a_location_or_link_elsewhere",
         f"{RF}::test_pull_cut_mid_blob_resumes",
         f"{RF}::test_pull_from_a_registry_that_keeps_dying_fails_cleanly",
         f"{RF}::test_push_cut_mid_blob_then_retry"],
    35: [f"{E}::test_workdir_proc_self_fd_is_refused", f"{OCI}::test_cwd_through_a_leaked_fd_is_refused"],
    36: [f"{E}::test_container_sees_only_stdio_fds", f"{OCI}::test_only_stdio_reaches_the_container"],
    37: [f"{E}::test_exec_with_a_proc_self_exe_shell_leaves_the_host_intact",
         f"{OCI}::test_proc_self_exe_never_points_at_the_host_interpreter_in_run", f"{OCI}::test_proc_self_exe_in_exec"],
    38: [f"{OCI}::test_symlinked_proc_or_sys_is_refused"],
    39: [f"{OCI}::test_symlinked_dev_is_never_followed"],
    40: [f"{E}::test_masked_paths", f"{OL}::test_mounts_masks_and_readonly"],
    41: [f"{OCI}::test_bind_mount_source_cannot_escape_via_image_symlink"],
    42: [f"{OL}::test_sysctl_and_rejected_injection"],
    44: [f"{E}::test_concurrent_creates_with_one_name", f"{EC}::test_unknown_image_and_names",
          f"{VD}/test_vmdriver_layout.py::test_invalid_names_are_rejected_with_125"],
    45: [f"{EC}::test_run_exit_codes"],
    46: [f"{EL}::test_stop_sends_stop_signal_then_sigkill"],
    47: [f"{E}::test_fork_bomb_and_memory_hog_are_contained"],
    48: [f"{E}::test_cp_into_symlinked_dir_lands_inside_the_container"],
    49: [f"{E}::test_cp_from_a_link_to_shadow_copies_the_containers_file"],
    50: [f"{E}::test_cp_while_the_container_swaps_symlinks"],
    52: [f"{E}::test_diff_export_commit", "tests/integration/image/test_image_overlay_commit.py::"
          "test_overlay_of_snapshots_then_commit"],
    55: ["tests/vm/test_vm_boot.py::test_boot_exec_stats_stop_remove"],
    58: [f"{VD}/test_vmdriver_domain.py::test_names_paths_and_metadata_are_escaped",
         f"{VD}/test_vmdriver_domain.py::test_control_characters_are_rejected",
         f"{VD}/test_vmdriver_domain.py::test_kernel_cmdline_is_bounded"],
    60: ["tests/vm/test_vm_boot.py::test_isolated_network_and_crash_leftovers"],
    61: ["tests/integration/bench/test_interrupt.py::test_sigint_stops_cleanly"],
    62: [f"{REP}/test_report_stats.py::test_one_sample_has_no_spread_and_no_ci",
         f"{REP}/test_report_stats.py::test_nan_and_inf_are_dropped_and_counted",
         f"{REP}/test_report_table.py::test_zero_successful_samples_say_not_measured_and_why",
         f"{REP}/test_report_load.py::test_failed_samples_keep_their_error",
         f"{REP}/test_report_render.py::test_incomplete_and_problem_runs_are_flagged"],
    63: [f"{REP}/test_report_render.py::test_html_escapes_every_name_and_is_self_contained"],
}

NAMED = re.compile(r"test_(?:case)?(\d{2})_")
SKIPPED_MARKS = {"slow", "bench"}


@cache
def functions(path: str) -> dict[str, set[str]]:
    """Test functions of a file -> the marker names on them (module pytestmark included)."""
    tree = ast.parse((REPO / path).read_text(), filename=path)
    module_marks = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
            module_marks |= _marks(node.value)
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
            marks = set(module_marks)
            for dec in node.decorator_list:
                marks |= _marks(dec)
            out[node.name] = marks
    return out


def _marks(node: ast.AST) -> set[str]:
    """Marker names in an expression such as `pytest.mark.slow` or `[pytest.mark.root, pytest.mark.vm]`."""
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Attribute) and sub.value.attr == "mark":
            names.add(sub.attr)
    return names


def named_cases() -> dict[int, list[str]]:
    """Tests whose names carry their case number (test_caseNN_..., test_NN_...), across tests/."""
    out: dict[int, list[str]] = {}
    for f in sorted((REPO / "tests").rglob("test_*.py")):
        rel = str(f.relative_to(REPO))
        try:
            fns = functions(rel)
        except SyntaxError:
            continue
        for name in fns:
            m = NAMED.match(name)
            if m and 1 <= int(m.group(1)) <= CASES:
                out.setdefault(int(m.group(1)), []).append(f"{rel}::{name}")
    return out


def full_index() -> dict[int, list[str]]:
    """INDEX plus the tests named after their case."""
    idx = {k: list(v) for k, v in INDEX.items()}
    for case, ids in named_cases().items():
        idx.setdefault(case, [])
        idx[case] += [i for i in ids if i not in idx[case]]
    return idx


def test_every_listed_test_exists_and_runs_in_make_test():
    missing, not_run = [], []
    for case, ids in sorted(full_index().items()):
        for nodeid in ids:
            path, _, name = nodeid.partition("::")
            if not (REPO / path).is_file() or name not in functions(path):
                missing.append(f"case {case}: {nodeid}")
            elif functions(path)[name] & SKIPPED_MARKS:
                not_run.append(f"case {case}: {nodeid} is marked {sorted(functions(path)[name] & SKIPPED_MARKS)}")
    assert not missing, "the corpus index names tests that do not exist (renamed? update INDEX):\n  " + \
        "\n  ".join(missing)
    assert not not_run, "corpus tests that make test skips:\n  " + "\n  ".join(not_run)


def test_at_least_60_cases_are_covered_and_gaps_are_named():
    idx = full_index()
    covered = sorted(c for c, ids in idx.items() if ids)
    gaps = [c for c in range(1, CASES + 1) if c not in covered]
    print(f"corpus: {len(covered)}/{CASES} cases covered; gaps: {gaps or 'none'}")
    assert len(covered) >= NEEDED, f"only {len(covered)} of {CASES} corpus cases have a test; gaps: {gaps}"


@pytest.mark.parametrize("case", range(1, CASES + 1))
def test_case_has_a_test(case):
    ids = full_index().get(case, [])
    if not ids:
        pytest.fail(f"SECURITY.md corpus case {case} has no test")
