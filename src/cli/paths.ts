import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where `cdse-auth` keeps a login on a person's machine when CDSE_CREDENTIALS_FILE is not set. */
export function defaultCredentialsFile(env: NodeJS.ProcessEnv = process.env): string {
  if (process.platform === 'win32') {
    return join(
      env.APPDATA || join(homedir(), 'AppData', 'Roaming'),
      'cdse-auth',
      'credentials.json',
    );
  }
  if (process.platform === 'darwin') {
    return join(homedir(), 'Library', 'Application Support', 'cdse-auth', 'credentials.json');
  }
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'cdse-auth', 'credentials.json');
}
