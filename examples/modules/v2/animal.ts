// Base class v2: every animal now has a mood, and describe() shows it.
export interface Animal {
  name: string;
  sound: string;
  mood: string;
}

export function create(name: string, sound: string): Animal {
  return { name, sound, mood: 'calm' };
}

export function describe(a: Animal): string {
  return `${a.name} says ${a.sound} (${a.mood})`;
}

// The conversion every subclass delegates to.
export function upgrade(old: { name: string; sound: string }, mood: string): Animal {
  return { ...old, mood };
}
