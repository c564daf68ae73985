import { CatalogueError, parseCatalogue } from '../../common/catalogue';

/** The message a catalogue is refused with; fails the test when it is accepted. */
export function catalogueErrorOf(text: string): string {
  try {
    parseCatalogue(text, 'apps.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(CatalogueError);
    return (err as Error).message;
  }
  throw new Error('expected the catalogue to be refused');
}
