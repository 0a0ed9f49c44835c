"""pyst2's stdio AGI, as Asterisk's classic ``AGI(script)`` runs it: one process per call.

Asterisk forks and executes the script for each call, writes the environment to its
standard input and reads its commands from its standard output. pyst2's ``AGI`` reads
the environment, and ``execute`` sends a command and parses the reply (it also writes
its debug lines to standard error, as it does in production).
"""

from __future__ import annotations

from asterisk.agi import AGI
from call_script import scripted_call


def main() -> None:
    agi = AGI()
    script = scripted_call(agi.env)
    command = next(script)
    try:
        while True:
            result = agi.execute(command)
            command = script.send(result["result"][1])
    except StopIteration:
        pass


if __name__ == "__main__":
    main()
