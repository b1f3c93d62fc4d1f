// The "base class": state shape and shared methods of every animal. Subclasses call it qualified.
export interface Animal {
  name: string;
  sound: string;
}

export function create(name: string, sound: string): Animal {
  return { name, sound };
}

export function describe(a: Animal): string {
  return `${a.name} says ${a.sound}`;
}
