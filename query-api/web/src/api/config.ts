// Where the command API and the sign-in issuer are, as the query API says (/app/config.json).

export interface OidcConfig {
  issuer: string;
  clientId: string;
}

export interface AppConfig {
  commandUrl: string;
  oidc: OidcConfig | null;
}

let loaded: Promise<AppConfig> | null = null;

export function appConfig(): Promise<AppConfig> {
  loaded ??= fetch("/app/config.json").then((response) => {
    if (!response.ok) throw new Error(`config.json answered ${response.status}`);
    return response.json() as Promise<AppConfig>;
  });
  return loaded;
}
