export const id = 816;
export const ids = [816];
export const modules = {

/***/ 2435:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   ActionsCacheTokenStore: () => (/* binding */ ActionsCacheTokenStore)
/* harmony export */ });
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(1455);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(6760);
/* harmony import */ var _actions_core__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(3838);
/* harmony import */ var _auth_index_js__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(1637);
/* harmony import */ var _seal_js__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(8217);





// The entry lives here only while tar reads or writes it; it holds ciphertext only.
const ENTRY_DIR = '.cdse-auth-cache';
const ENTRY_FILE = 'token.sealed';
const ENTRY_PATH = `${ENTRY_DIR}/${ENTRY_FILE}`;
/**
 * A token store in the workflow's Actions cache, so every job of a workflow reuses one login.
 * Entries are sealed with AES-256-GCM; an entry that does not open is ignored with a warning.
 * `clear()` saves a tombstone, the newest entry, since entries cannot be deleted.
 */
class ActionsCacheTokenStore extends _auth_index_js__WEBPACK_IMPORTED_MODULE_3__/* .TokenStore */ .JH {
    #o;
    #dir;
    #file;
    constructor(options) {
        super();
        this.#o = options;
        this.#dir = (0,node_path__WEBPACK_IMPORTED_MODULE_1__.join)(options.workspace, ENTRY_DIR);
        this.#file = (0,node_path__WEBPACK_IMPORTED_MODULE_1__.join)(this.#dir, ENTRY_FILE);
    }
    async load() {
        if (!this.#o.read)
            return undefined;
        await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.mkdir)(this.#dir, { recursive: true, mode: 0o700 });
        let sealed;
        try {
            const hit = await this.#bounded('restore', () => this.#o.cache.restoreCache([ENTRY_PATH], this.#o.prefix, [this.#o.prefix]));
            if (!hit)
                return undefined;
            sealed = await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.readFile)(this.#file);
        }
        catch {
            return undefined;
        }
        finally {
            await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.rm)(this.#dir, { recursive: true, force: true });
        }
        const plain = (0,_seal_js__WEBPACK_IMPORTED_MODULE_4__/* .open */ .ho)(sealed, this.#o.key, this.#o.identity);
        let entry;
        try {
            entry = plain && JSON.parse(plain.toString('utf8'));
        }
        catch {
            entry = undefined;
        }
        if (!entry) {
            this.#o.warn('Ignoring the cached CDSE login: it does not open with this job\u2019s key (another cache-secret or password, or a damaged entry). Logging in instead.');
            return undefined;
        }
        return entry.tokenSet === null ? undefined : _auth_index_js__WEBPACK_IMPORTED_MODULE_3__/* .TokenSet */ .KR.from(entry.tokenSet);
    }
    async save(tokenSet) {
        await this.#write({ tokenSet });
    }
    async clear() {
        await this.#write({ tokenSet: null });
    }
    async #write(entry) {
        if (!this.#o.write)
            return;
        await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.mkdir)(this.#dir, { recursive: true, mode: 0o700 });
        const sealed = (0,_seal_js__WEBPACK_IMPORTED_MODULE_4__/* .seal */ .od)(Buffer.from(JSON.stringify(entry)), this.#o.key, this.#o.identity);
        try {
            await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.writeFile)(this.#file, sealed, { mode: 0o600 });
            await this.#bounded('save', () => this.#o.cache.saveCache([ENTRY_PATH], freshKey(this.#o.prefix)));
        }
        finally {
            await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.rm)(this.#dir, { recursive: true, force: true });
        }
    }
    // The library retries a failing service for up to ~30 s per call; a job must not wait for that.
    async #bounded(what, operation) {
        let timer;
        const timeout = new Promise((resolve) => {
            timer = setTimeout(() => {
                this.#o.warn(`The Actions cache did not answer the ${what} within ${this.#o.timeoutMs / 1000} s; going on without it.`);
                resolve(undefined);
            }, this.#o.timeoutMs);
        });
        // The library logs tar commands and transfer progress: fold them away in the step log.
        _actions_core__WEBPACK_IMPORTED_MODULE_2__/* .startGroup */ .Oh(`Actions cache ${what}`);
        try {
            return await Promise.race([
                operation().catch((error) => {
                    this.#o.warn(`The Actions cache ${what} failed (${error.message}); going on without it.`);
                    return undefined;
                }),
                timeout,
            ]);
        }
        finally {
            clearTimeout(timer);
            _actions_core__WEBPACK_IMPORTED_MODULE_2__/* .endGroup */ .N4();
        }
    }
}
/** `<prefix><run id>-<attempt>-<job>-<time>-<random>`: keys are immutable and matrix jobs share a job id. */
function freshKey(prefix) {
    const env = process.env;
    const job = (env.GITHUB_JOB ?? 'job').replace(/[^\w.-]/g, '_').slice(0, 100);
    const random = Math.random().toString(36).slice(2, 8);
    return `${prefix}${env.GITHUB_RUN_ID ?? 0}-${env.GITHUB_RUN_ATTEMPT ?? 1}-${job}-${Date.now()}-${random}`;
}


/***/ })

};
