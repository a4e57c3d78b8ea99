# Managed by Pressluft. Action plugin `pressluft_result`: writes the job's result file
# (`pressluft_result_path`, on the control-plane host) as JSON, mode 0600, atomically.
#
# Why a plugin: an action plugin runs inside ansible-playbook on the controller, so this costs
# milliseconds, where `copy` with `delegate_to: localhost` starts a Python module process (about a
# second here; docs/benchmarks.md, "Clone"). Every playbook writes its result with it.
#
#   - name: Write the result file for the control plane
#     pressluft_result:
#       path: "{{ pressluft_result_path }}"
#       data: {release_path: "...", ...}
import json
import os
import tempfile

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        path = self._task.args.get("path")
        data = self._task.args.get("data")
        if not path or data is None:
            result.update(failed=True, msg="pressluft_result needs path and data")
            return result
        directory = os.path.dirname(os.path.abspath(path))
        fd, candidate = tempfile.mkstemp(dir=directory, prefix=".result-")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=2)
                f.write("\n")
            os.chmod(candidate, 0o600)
            os.replace(candidate, path)
        except Exception as e:  # report, never leave the candidate behind
            if os.path.exists(candidate):
                os.unlink(candidate)
            result.update(failed=True, msg="writing the result file failed: %s" % e)
            return result
        # A report to the control plane in a fresh run directory, not a change to the node.
        result.update(changed=False)
        return result
