/** The Redis channel on which a site's changes are announced. */
export const siteChannel = (id: string) => `berth:site:${id}`;
