export const DEFAULT_TOKEN_URL =
  'https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token';
export const DEFAULT_CLIENT_ID = 'cdse-public';
