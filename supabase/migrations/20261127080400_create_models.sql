-- public.models: the catalog of generation models (provider model ids live here, not in code).
--
-- Additions to the seed: NOT NULL on flags and timestamps, cost > 0, updated_at, and
-- settings_schema (per-model allowed settings, e.g. durations and aspect ratios, which
-- the API validates requests against).
create table public.models (
    id uuid primary key default gen_random_uuid(),
    name text not null,
    category text not null,
    description text,
    cost_per_generation integer not null default 4,
    provider text not null,
    provider_model_id text,
    is_featured boolean not null default false,
    is_available boolean not null default true,
    thumbnail_url text,
    settings_schema jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),

    constraint models_cost_per_generation_check check (cost_per_generation > 0),
    constraint models_provider_check check (provider ~ '^[a-z0-9_-]{1,64}$'),
    constraint models_settings_schema_check check (jsonb_typeof(settings_schema) = 'object')
);

comment on table public.models is 'Video generation models; clients see the available ones.';
comment on column public.models.settings_schema is
    'Allowed settings for this model, e.g. {"duration": ["4s","8s"], "aspect_ratio": [...]}.';

create index idx_models_provider on public.models (provider);
create index idx_models_featured on public.models (is_featured) where is_featured = true;

create trigger models_set_updated_at
    before update on public.models
    for each row execute function private.set_updated_at();

alter table public.models enable row level security;

-- Anyone (guest or signed in) can list the available models.
create policy models_select_available on public.models
    for select to anon, authenticated
    using (is_available);

revoke all on table public.models from public, anon, authenticated, service_role;
grant select on table public.models to anon, authenticated;
grant select, insert, update, delete on table public.models to service_role;
