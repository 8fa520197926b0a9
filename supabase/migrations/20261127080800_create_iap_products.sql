-- public.iap_products: App Store product catalog; maps a StoreKit productId to credits.
create table public.iap_products (
    product_id text primary key,
    credits integer not null,
    active boolean not null default true,
    description text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),

    constraint iap_products_credits_check check (credits > 0),
    constraint iap_products_product_id_check check (char_length(product_id) between 1 and 255)
);

comment on table public.iap_products is
    'In-app purchase products and the credits each grants (used to verify purchases).';

create trigger iap_products_set_updated_at
    before update on public.iap_products
    for each row execute function private.set_updated_at();

alter table public.iap_products enable row level security;

-- The catalog is public information: anyone may read the active products.
create policy iap_products_select_active on public.iap_products
    for select to anon, authenticated
    using (active);

revoke all on table public.iap_products from public, anon, authenticated, service_role;
grant select on table public.iap_products to anon, authenticated;
grant select, insert, update, delete on table public.iap_products to service_role;
