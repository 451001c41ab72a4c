// Svelte 5 defaults: runes, plain JavaScript, no preprocessing.
export default {};
