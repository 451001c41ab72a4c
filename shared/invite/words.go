package invite

// Words is the pairing-fingerprint word list (PROTOCOL.md section 7): 256 distinct, short,
// common English nouns, chosen to be easy to say aloud and hard to mishear (no homophones).
// The order is part of the protocol: never reorder or edit a published list.
var Words = [256]string{
	"acorn", "actor", "alarm", "album", "alien", "amber", "angel", "apple", "apron", "arena",
	"arrow", "atlas", "audio", "bacon", "badge", "bagel", "baker", "bamboo", "banana", "banjo",
	"barn", "basket", "beach", "bean", "beaver", "bell", "bench", "bike", "bird", "blanket",
	"boat", "bonus", "book", "boot", "bottle", "bowl", "brain", "brick", "bridge", "brush",
	"bubble", "bucket", "buffalo", "butter", "button", "cabin", "cactus", "cake", "camel",
	"camera", "candle", "candy", "canoe", "canyon", "carpet", "carrot", "castle", "chair",
	"cherry", "chess", "chicken", "circus", "clock", "cloud", "clown", "coat", "coconut",
	"coffee", "comet", "cookie", "copper", "coral", "corn", "cotton", "cowboy", "crab", "crayon",
	"crown", "cup", "daisy", "dance", "desert", "desk", "diamond", "dinner", "doctor", "dolphin",
	"donkey", "door", "dragon", "dream", "drum", "duck", "eagle", "echo", "egg", "elbow",
	"falcon", "farm", "feather", "fence", "ferry", "field", "finger", "flag", "flame", "flute",
	"forest", "fork", "fox", "frog", "galaxy", "garden", "garlic", "giant", "giraffe", "glove",
	"goat", "gold", "gorilla", "grape", "guitar", "hammer", "harbor", "hat", "hawk", "helmet",
	"hill", "honey", "horse", "hotel", "island", "jacket", "jelly", "jewel", "jungle", "kettle",
	"key", "kitten", "kiwi", "koala", "ladder", "lake", "lamp", "lemon", "leopard", "lily",
	"lion", "lizard", "magnet", "mango", "maple", "marble", "market", "meadow", "melon", "mirror",
	"monkey", "moon", "moose", "muffin", "museum", "needle", "nest", "noodle", "ocean", "olive",
	"onion", "orange", "orbit", "otter", "owl", "palace", "panda", "paper", "parrot", "peach",
	"peanut", "pencil", "penguin", "pepper", "piano", "picnic", "pigeon", "pillow", "pilot",
	"pirate", "pizza", "planet", "plum", "pocket", "pony", "potato", "pumpkin", "puzzle", "queen",
	"rabbit", "radio", "rainbow", "raven", "river", "robin", "robot", "rocket", "ruby", "salad",
	"salmon", "scarf", "shark", "sheep", "shell", "shovel", "silver", "skate", "sled", "snail",
	"snake", "soccer", "sock", "spider", "spoon", "stamp", "star", "stone", "storm", "sugar",
	"sunset", "swan", "table", "tennis", "tent", "tiger", "toast", "tomato", "tower", "tractor",
	"train", "tulip", "tunnel", "turtle", "valley", "violin", "volcano", "wagon", "walnut",
	"water", "whale", "wheel", "whistle", "window", "winter", "wizard", "wolf", "yogurt", "zebra",
	"zipper",
}
