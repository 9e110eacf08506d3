"""Edit one product through the real services, as an editor would: ``entity_update`` with a
new English description, then ``object_publish``. Prints one JSON line (the product's IRI,
its new version and the seconds the two service calls took).

    python -m tests.benchmarks.edit --number 5000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def edited_data(data: dict, number: int, version: int) -> dict:
    """``data`` with its English description replaced (the Chinese one kept); the text names
    the version it makes, so that every edit really changes the product."""
    description = [v for v in data.get("description", []) if v.get("@language") != "en"]
    description.insert(
        0,
        {
            "@language": "en",
            "@value": f"Tea number {number}: edited for the benchmark (v{version}).",
        },
    )
    return {**data, "description": description}


def edit_product(number: int) -> dict:
    from kb.models import Entity
    from kb.services.entities import entity_update
    from kb.services.workflow import object_publish
    from tests.benchmarks import catalog

    item = catalog.product(number)
    entity = Entity.objects.select_related("brand").get(brand__slug=catalog.SLUG, iri=item.iri)
    started = time.perf_counter()
    entity = entity_update(
        entity=entity,
        data=edited_data(entity.data, number, entity.version + 1),
        expected_version=entity.version,
        message="Benchmark edit",
    )
    object_publish(obj=entity)
    seconds = time.perf_counter() - started
    return {"iri": item.iri, "version": entity.version, "seconds": round(seconds, 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, required=True, help="The product to edit.")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    print(json.dumps(edit_product(args.number)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
