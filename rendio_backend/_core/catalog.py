"""The versioned model catalog file (public.models' rows), its loader and its diff."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from ..errors import ConfigurationError
from ..models import ChangeAction, SeedItem


class CatalogModel(BaseModel):
    """One model of the versioned catalog file (the columns of public.models)."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    id: uuid.UUID
    name: str = Field(min_length=1)
    category: str = Field(min_length=1)
    description: str | None = None
    cost_per_generation: int = Field(gt=0)
    provider: str = Field(pattern=r"^[a-z0-9_-]{1,64}$")
    provider_model_id: str | None = None
    is_featured: bool = False
    is_available: bool = True
    thumbnail_url: str | None = None
    settings_schema: dict[str, Any] = Field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """The JSON row to insert or update."""
        return self.model_dump(mode="json")


class Catalog(BaseModel):
    """The catalog file: a version and its models."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: str = Field(min_length=1)
    models: list[CatalogModel]


def default_catalog_path() -> Path:
    """Rendio's own catalog, shipped inside the package (works wherever it is installed)."""
    # rendio_backend/_core/catalog.py -> rendio_backend/catalog/models.json
    return Path(__file__).resolve().parent.parent / "catalog" / "models.json"


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and validate a catalog file (default: default_catalog_path())."""
    location = Path(path) if path is not None else default_catalog_path()
    try:
        catalog = Catalog.model_validate_json(location.read_bytes())
    except OSError as exc:
        raise ConfigurationError(f"cannot read the model catalog {location}: {exc}",
                                 code="catalog_missing") from exc
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigurationError(f"invalid model catalog {location}: {where}: {first['msg']}",
                                 code="catalog_invalid") from exc
    ids = [model.id for model in catalog.models]
    if len(set(ids)) != len(ids):
        raise ConfigurationError(f"duplicate model ids in {location}", code="catalog_invalid")
    return catalog


def catalog_changes(model: CatalogModel, current: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of an existing row that differ from the catalog entry."""
    wanted = model.row()
    return {name: value for name, value in wanted.items()
            if name != "id" and current.get(name) != value}


def seed_item(model: CatalogModel, current: Mapping[str, Any] | None) -> SeedItem:
    """The action seeding takes for one catalog entry."""
    if current is None:
        return SeedItem(model_id=model.id, name=model.name, action=ChangeAction.CREATED)
    changes = catalog_changes(model, current)
    action = ChangeAction.UPDATED if changes else ChangeAction.UNCHANGED
    return SeedItem(model_id=model.id, name=model.name, action=action,
                    changed_fields=sorted(changes))
