#!/usr/bin/env python3
"""Checks schemas/stack.schema.json against the stack-file corpus and the examples.

Every file under tests/data/stackfiles/valid (cases and parts/*.yaml) and every examples/*/*.yaml
must validate. Every case under tests/data/stackfiles/invalid says on its first line whether
the schema sees its problem ("# schema: invalid": it must be rejected, by the schema or as
unparsable YAML) or only the loader does ("# schema: accepts": it must validate). Uses
Debian's python3-jsonschema and python3-yaml. Usage: check_schema.py SOURCE_DIR
"""
import pathlib
import sys

import jsonschema
import yaml


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def main(source):
    root = pathlib.Path(source)
    schema = load(root / "schemas/stack.schema.json")
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    corpus = root / "tests/data/stackfiles"
    failures = []
    checked = 0

    def errors_of(path):
        try:
            doc = load(path)
        except yaml.YAMLError as e:
            return ["not YAML: " + str(e).splitlines()[0]]
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in validator.iter_errors(doc)]

    must_pass = sorted((corpus / "valid").glob("*.yaml")) + \
        sorted((corpus / "valid/parts").rglob("*.yaml")) + sorted((root / "examples").rglob("*.yaml"))
    for path in must_pass:
        checked += 1
        errors = errors_of(path)
        if errors:
            failures.append(f"{path.relative_to(root)}: should validate: {errors[0]}")
    for path in sorted((corpus / "invalid").glob("*.yaml")):
        first = path.read_text().splitlines()[0]
        if first not in ("# schema: invalid", "# schema: accepts"):
            failures.append(f"{path.relative_to(root)}: first line must be "
                            "'# schema: invalid' or '# schema: accepts'")
            continue
        checked += 1
        errors = errors_of(path)
        if first == "# schema: invalid" and not errors:
            failures.append(f"{path.relative_to(root)}: the schema accepts it")
        if first == "# schema: accepts" and errors:
            failures.append(f"{path.relative_to(root)}: the schema rejects it: {errors[0]}")
    for f in failures:
        print(f)
    print(f"{checked} files checked, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
