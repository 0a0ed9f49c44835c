"""Prompt audio: the Spanish texts of ``menu.yaml`` as files Asterisk plays natively.

- :mod:`ivr.prompts.manifest` reads and writes ``prompts/es/manifest.json``: per prompt,
  the hash of the text its audio says, whether the audio was synthesised or recorded,
  how, and the files with their hashes.
- :mod:`ivr.prompts.state` compares the menu's texts with the manifest and the files on
  disk (pure): ok, stale, missing, modified or invalid, plus orphans; and decides what a
  build should redo.
- :mod:`ivr.prompts.files` looks at the folder (hashes, WAV headers) and writes files
  atomically.
- :mod:`ivr.prompts.synth` runs espeak-ng and sox: text to 8 kHz mono WAV and raw µ-law.
- :mod:`ivr.prompts.build` rebuilds what is out of date, in parallel, and records it.
- :mod:`ivr.prompts.checking` turns the comparison into ``file:line:col`` warnings for
  ``ivr check``; :mod:`ivr.prompts.commands` is the ``ivr prompts`` command.
"""
